"""Base classes for credential resolvers: one method to write, the miss explained for free.

A resolver answers ``resolve(url, config)`` and, right after a miss, ``describe_miss(url, config)``
(the :class:`~clearml_core.credentials.CredentialResolver` protocol). Working the explanation out
a second time repeats the lookups (an ssh agent or a metadata server asked again) and lets it drift
from what ``resolve`` really did. :class:`ExplainingResolver` takes one method instead,
``find(url, config, misses)``, which notes each reason it gives up in :class:`Misses`.

:class:`ConfigEntryResolver` is the ``clearml.conf`` resolver every storage backend needs:
ClearML's sections hold a list of entries (``sdk.aws.s3.credentials``: per bucket, host, account
and container …) and fields of their own (``sdk.aws.s3.key``) for the URLs no entry matches. A
backend says how to find the URL's entry and read credentials from it; the order of the lookups
and the words of every miss are the same for every backend.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.credentials.chain import Credentials


class Misses:
    """Why a resolver found nothing: the notes it took while looking, in order."""

    def __init__(self) -> None:
        self._notes: list[str] = []

    def note(self, text: str) -> None:
        """Add why the resolver gives up here (never a secret); "" adds nothing."""
        if text:
            self._notes.append(text)

    @property
    def text(self) -> str:
        """The notes joined with ``"; "``: what ``describe_miss`` says."""
        return "; ".join(self._notes)

    def __bool__(self) -> bool:
        return bool(self._notes)


class ExplainingResolver(ABC):
    """A credential resolver written as one method, :meth:`find`; ``resolve`` and
    ``describe_miss`` come from it.

    The notes of a miss are kept, per thread, until ``describe_miss`` asks for them with the same
    URL and configuration (the chain asks right after ``resolve``), so nothing is looked up
    twice; asked about anything else, ``describe_miss`` looks again.
    """

    @abstractmethod
    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        """The credentials for ``url``, or None after noting in ``misses`` why there are none.

        Raise a :class:`~clearml_core.errors.UserError` only for what the user must fix, as the
        protocol says.
        """

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        """:meth:`find`, keeping the notes of a miss for :meth:`describe_miss`."""
        misses = Misses()
        found = self.find(url, config, misses)
        self._last_miss().seen = None if found is not None else (url, config, misses.text)
        return found

    def describe_miss(self, url: Any, config: Config) -> str:
        """Why the last :meth:`resolve` of ``url`` under ``config`` in this thread found nothing."""
        last = self._last_miss()
        seen, last.seen = getattr(last, "seen", None), None  # kept for one answer: no stale notes
        if seen is not None and seen[1] is config and seen[0] == url:
            return str(seen[2])
        misses = Misses()
        return "" if self.find(url, config, misses) is not None else misses.text

    def _last_miss(self) -> threading.local:
        # made on first use, so a subclass's __init__ need not call ours
        return self.__dict__.setdefault("_explaining_last_miss", threading.local())


class ConfigEntry(Protocol):
    """What :class:`ConfigEntryResolver` needs of a backend's configuration entry."""

    @property
    def where(self) -> str:
        """What the entry is for, in the entry's own terms: ``bucket data``, ``account a container c``."""
        ...


EntryT = TypeVar("EntryT", bound=ConfigEntry)
SettingsT = TypeVar("SettingsT")


@dataclass(frozen=True)
class ConfigLookup(Generic[SettingsT, EntryT]):
    """What a lookup in a ``clearml.conf`` section found for a URL.

    Subclass it (a frozen dataclass) when reading the credentials needs more than the parsed
    section, such as the URL's location.
    """

    settings: SettingsT
    """The section as the backend parsed it: what reading the credentials needs besides the entry."""
    target: str
    """The URL as entries are matched against it, in misses: ``bucket 'data'``, ``gs://b/dir``."""
    entry: EntryT | None
    """The most specific entry matching the URL; None when none does."""
    entry_source: str
    """Where that entry is written (``~/clearml.conf: sdk.aws.s3.credentials[1]``); "" for none."""


LookupT = TypeVar("LookupT", bound="ConfigLookup[Any, Any]")


class ConfigEntryResolver(ExplainingResolver, Generic[EntryT, LookupT]):
    """Credentials from a ``clearml.conf`` section: the URL's entry, else the section's own fields.

    A subclass sets :attr:`entries`, :attr:`wanted` and, when the section holds credentials of its
    own, :attr:`section`; it implements :meth:`lookup` and :meth:`from_entry`, and
    :meth:`from_section` with a section. An entry that matches but brings no credentials is a miss
    (:meth:`unusable` may warn about it); the section's fields are then not asked, since an
    entry's unset fields have inherited them already.
    """

    entries: ClassVar[str]
    """The list of entries (``sdk.aws.s3.credentials``), named in misses."""
    section: ClassVar[str | None] = None
    """The section whose own fields serve URLs no entry matches (``sdk.aws.s3``); None for none."""
    wanted: ClassVar[str]
    """What makes credentials (``key/secret or profile``), named in misses."""

    @abstractmethod
    def lookup(self, url: Any, config: Config) -> LookupT:
        """Find the most specific entry for ``url`` (parse the section once per configuration)."""

    @abstractmethod
    def from_entry(self, entry: EntryT, found: LookupT) -> Credentials | None:
        """The credentials of ``entry``, the one matching the URL; None when it brings none."""

    def from_section(self, found: LookupT) -> Credentials | None:
        """The section's own credentials, for a URL no entry matches; None when it has none.

        Asked only when :attr:`section` is set.
        """
        return None

    def unusable(self, entry: EntryT, found: LookupT) -> None:
        """Called when the matching ``entry`` brings no credentials: a place to warn (once)."""

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        found = self.lookup(url, config)
        entry = found.entry
        if entry is not None:
            credentials = self.from_entry(entry, found)
            if credentials is None:
                self.unusable(entry, found)
                inherit = f", and {self.section} has none to inherit" if self.section else ""
                misses.note(
                    f"{found.entry_source} ({entry.where}) matches but sets no {self.wanted}{inherit}"
                )
            return credentials
        credentials = self.from_section(found) if self.section else None
        if credentials is None:
            own = f", and {self.section} sets no {self.wanted}" if self.section else ""
            misses.note(f"no {self.entries} entry matches {found.target}{own}")
        return credentials


__all__ = ["ConfigEntry", "ConfigEntryResolver", "ConfigLookup", "ExplainingResolver", "Misses"]
