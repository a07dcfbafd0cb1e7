"""The credential chain: per URL scheme, resolvers asked in order; the first answer wins.

Resolvers come from the plugin registry (``clearml_credential_resolvers``), each with an
``order``: configuration file entries answer at 100, environment variables at 200, the cloud
SDK's own default chain at 300, and anything else (a vault, an OIDC exchange) slots in between.
:func:`explain` keeps the whole story — which resolvers were asked, which answered and from
where, and why the others had nothing — for ``clearml-core storage resolve``.

A resolver that raises anything but a :class:`~clearml_core.errors.UserError` has a bug: the chain
stops there with a :class:`CredentialResolverError` naming the resolver, the plugin distribution it
comes from and the URL, rather than going on to a later resolver, whose credentials the user did
not choose for that URL.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from clearml_core.config.redact import MASK, is_access_key, is_secret_key, mask_access_key, redactor
from clearml_core.errors import PluginError, UserError

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.plugins import PluginInfo, PluginRegistry
    from clearml_core.specs import CredentialResolverSpec


@dataclass(frozen=True)
class Credentials:
    """What a driver needs to talk to one location, and where it came from.

    ``values`` holds the driver's settings (``key``, ``secret``, ``region``, ``account_name``,
    ``username`` …); ``source`` says where they were found, e.g.
    ``~/clearml.conf: sdk.aws.s3.credentials[1]`` or ``env AWS_ACCESS_KEY_ID``; ``resolver`` is the
    name of the resolver that answered (the chain fills it in when the resolver leaves it empty).
    """

    values: Mapping[str, Any]
    source: str
    resolver: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", dict(self.values))
        # Anything secret a resolver finds is scrubbed from whatever is printed or logged later.
        for key, value in self.values.items():
            if isinstance(value, str) and value:
                if is_secret_key(key):
                    redactor.add(value)
                elif is_access_key(key):
                    redactor.add(value, mask_access_key(value))

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        return key in self.values

    def masked(self) -> dict[str, Any]:
        """The values with secrets masked and key ids cut to their last four characters."""
        return {key: _mask(key, value) for key, value in self.values.items()}

    @property
    def key_id(self) -> str | None:
        """The masked access key id / account / user name, for ``storage resolve``."""
        for name in ("key", "access_key", "access_key_id", "key_id", "account_name", "username", "user"):
            value = self.values.get(name)
            if isinstance(value, str) and value:
                return mask_access_key(value) if is_access_key(name) else value
        return None

    def __repr__(self) -> str:  # never show secrets, not even in a debugger's repr
        return f"Credentials(values={self.masked()!r}, source={self.source!r}, resolver={self.resolver!r})"


def _mask(key: str, value: Any) -> Any:
    if value is None or value == "":
        return value
    if is_secret_key(key):
        return MASK
    if is_access_key(key) and isinstance(value, str):
        return mask_access_key(value)
    if isinstance(value, Mapping):
        return {k: _mask(k, v) for k, v in value.items()}
    return value


@runtime_checkable
class CredentialResolver(Protocol):
    """Finds credentials for a URL, or says it has none (``None``) so the chain goes on.

    ``url`` is a :class:`~clearml_core.storage.url.StorageURL` (or the URL text for resolvers
    that do not need it parsed); ``config`` is the loaded ``clearml.conf``. A resolver raises
    only for a mistake the user must fix (a config entry that cannot be used, a credentials file
    that does not parse) — as a :class:`~clearml_core.errors.UserError`. Anything else it raises
    is taken for a bug: the chain stops with a :class:`CredentialResolverError` naming it.
    """

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        """The credentials for ``url``, or ``None`` to let the next resolver answer."""
        ...

    def describe_miss(self, url: Any, config: Config) -> str:
        """Why :meth:`resolve` had nothing for ``url`` under ``config`` (``""`` to say nothing).

        Called right after ``resolve`` returned ``None``, with the same arguments; the text is
        shown by ``clearml-core storage resolve`` (``tried``) and in missing-credentials errors,
        so it names what was looked at (``no sdk.aws.s3.credentials entry matches bucket 'x'``)
        and never a secret.
        """
        ...


class CredentialResolverError(PluginError):
    """A credential resolver failed with a bug of its own (not a user error)."""


@dataclass(frozen=True)
class Attempt:
    """One resolver asked while resolving a URL."""

    resolver: str
    order: int
    answered: bool
    source: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "resolver": self.resolver,
            "order": self.order,
            "answered": self.answered,
            "source": self.source,
            "note": self.note,
        }


@dataclass(frozen=True)
class Resolution:
    """Which resolvers of a scheme's chain were asked for a URL, and which one answered."""

    url: str
    scheme: str
    credentials: Credentials | None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def resolver(self) -> str | None:
        return self.credentials.resolver if self.credentials else None

    @property
    def source(self) -> str | None:
        return self.credentials.source if self.credentials else None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": redactor(self.url),
            "scheme": self.scheme,
            "resolver": self.resolver,
            "source": self.source,
            "key_id": self.credentials.key_id if self.credentials else None,
            "values": self.credentials.masked() if self.credentials else None,
            "tried": [attempt.to_json() for attempt in self.attempts],
        }


@dataclass(frozen=True)
class _Link:
    name: str
    order: int
    resolver: CredentialResolver
    provider: PluginInfo | None = None
    """The plugin that provides it, named when it fails."""

    def failed(self, url: Any, what: str) -> CredentialResolverError:
        from clearml_core.plugins import BUILTIN_NAME, DISABLE_VARIABLE

        origin = f" (from {self.provider.label})" if self.provider is not None else ""
        remedy = "report it to its authors"
        if self.provider is not None and self.provider.name != BUILTIN_NAME:
            remedy += f", or leave it out of the chain with {DISABLE_VARIABLE}={self.provider.name}"
        return CredentialResolverError(
            redactor(f"the credential resolver {self.name!r}{origin} failed on {url}: {what}; {remedy}")
        )

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        try:
            found = self.resolver.resolve(url, config)
        except UserError:
            raise  # what the user must fix, in the resolver's own words
        except Exception as error:
            raise self.failed(url, f"{type(error).__name__}: {error}") from error
        if found is not None and not isinstance(found, Credentials):
            raise self.failed(url, f"resolve returned {type(found).__name__}, not Credentials or None")
        return found

    def describe_miss(self, url: Any, config: Config) -> str:
        try:
            return str(self.resolver.describe_miss(url, config) or "")
        except Exception as error:  # only an explanation: say that it failed, and go on
            return redactor(f"(describe_miss failed: {type(error).__name__}: {error})")


class CredentialChain:
    """The ordered resolvers of one URL scheme."""

    def __init__(self, scheme: str, links: list[_Link]) -> None:
        self.scheme = scheme
        self._links = sorted(links, key=lambda link: link.order)

    @classmethod
    def from_specs(
        cls,
        scheme: str,
        specs: list[CredentialResolverSpec],
        provider: Callable[[CredentialResolverSpec], PluginInfo | None] | None = None,
    ) -> CredentialChain:
        """The chain of ``specs``; ``provider`` finds the plugin of each, named when it fails."""
        links = []
        for spec in specs:
            plugin = provider(spec) if provider is not None else None
            resolver = instantiate(spec, plugin.label if plugin is not None else "")
            links.append(_Link(spec.name, spec.order, resolver, plugin))
        return cls(scheme, links)

    @property
    def names(self) -> list[str]:
        return [link.name for link in self._links]

    def explain(self, url: Any, config: Config) -> Resolution:
        """Ask every resolver in order until one answers; record each one asked."""
        attempts: list[Attempt] = []
        for link in self._links:
            credentials = link.resolve(url, config)
            if credentials is None:
                attempts.append(Attempt(link.name, link.order, False, note=link.describe_miss(url, config)))
                continue
            if not credentials.resolver:
                credentials = Credentials(credentials.values, credentials.source, link.name)
            attempts.append(Attempt(link.name, link.order, True, credentials.source))
            return Resolution(str(url), self.scheme, credentials, attempts)
        return Resolution(str(url), self.scheme, None, attempts)

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        return self.explain(url, config).credentials


def _takes_url_and_config(method: Any) -> bool:
    try:
        inspect.signature(method).bind("url", "config")
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): let the call decide
        return True
    return True


def instantiate(spec: CredentialResolverSpec, origin: str = "") -> CredentialResolver:
    """The resolver a spec names: a class (called without arguments) or a ready object.

    It must have ``resolve(url, config)`` and ``describe_miss(url, config)``; ``origin`` (the
    plugin providing it) is named in the error when it has not.
    """
    where = f" from {origin}" if origin else ""
    try:
        target = spec.load()
        resolver = target() if isinstance(target, type) else target
    except Exception as error:
        raise PluginError(
            f"credential resolver {spec.name!r} ({spec.factory}{where}) cannot be loaded: "
            f"{type(error).__name__}: {error}"
        ) from error
    for method in ("resolve", "describe_miss"):
        found = getattr(resolver, method, None)
        if not callable(found) or not _takes_url_and_config(found):
            raise PluginError(
                f"credential resolver {spec.name!r} ({spec.factory}{where}) has no {method}(url, config) "
                "method; see CredentialResolver in clearml_core.credentials for the protocol"
            )
    return resolver


_chains: weakref.WeakKeyDictionary[Any, dict[str, CredentialChain]] = weakref.WeakKeyDictionary()


def chain_for(scheme: str, registry: PluginRegistry | None = None) -> CredentialChain:
    """The chain of ``scheme`` built from the registry's resolvers (cached per registry)."""
    if registry is None:
        from clearml_core.plugins import get_registry

        registry = get_registry()
    scheme = scheme.lower()
    chains = _chains.setdefault(registry, {})
    chain = chains.get(scheme)
    if chain is None:
        specs = registry.credential_resolvers(scheme)
        chain = chains[scheme] = CredentialChain.from_specs(scheme, specs, registry.provider_of)
    return chain


def _scheme_of(url: Any) -> str:
    scheme = getattr(url, "scheme", None)
    if scheme:
        return str(scheme)
    text = str(url)
    head, sep, _rest = text.partition("://")
    return head.lower() if sep else "file"


def _parsed(url: Any) -> Any:
    if not isinstance(url, str):
        return url
    from clearml_core.storage.url import parse_url

    return parse_url(url)


def explain(url: Any, config: Config | None = None, registry: PluginRegistry | None = None) -> Resolution:
    """Run the chain of the URL's scheme and keep the explanation (``storage resolve``)."""
    if config is None:
        from clearml_core.settings import get_config

        config = get_config()
    parsed = _parsed(url)
    return chain_for(_scheme_of(parsed), registry).explain(parsed, config)


def resolve(
    url: Any, config: Config | None = None, registry: PluginRegistry | None = None
) -> Credentials | None:
    """The credentials of the first resolver of the URL's scheme that answers, or ``None``."""
    return explain(url, config, registry).credentials


def reset_chains() -> None:
    """Forget built chains (tests, or after the registry changed)."""
    _chains.clear()


__all__ = [
    "Attempt",
    "CredentialChain",
    "CredentialResolver",
    "CredentialResolverError",
    "Credentials",
    "Resolution",
    "chain_for",
    "explain",
    "instantiate",
    "reset_chains",
    "resolve",
]
