"""A task's Python requirements: where they come from and what in them decides the environment.

The lines come from the task record (``task.requirements.pip``), else from the requirements file
of its code (``requirements.txt`` in the working dir, then at the root); with
``agent.package_manager.force_repo_requirements_txt`` the file wins over the record. Lines are
read the way pip reads a requirements file: comments and blank lines dropped, ``\\`` continuations
joined, ``-r`` files included in place, relative paths made absolute (a file's paths are relative
to that file, the record's to the working dir).

What the cache key needs beyond the text is recorded too: local wheels and ``-c`` constraint files
by size and modification time, local source folders by a digest of their file list. An editable
install of a local folder (``-e .``) points into the task's own checkout, which is deleted after
the run, so such a set is built per task and not cached (:attr:`RequirementSet.cacheable`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from clearml_core.errors import NotFoundError, UserError

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import Task

REQUIREMENTS_FILE = "requirements.txt"
MAX_FOLDER_FILES = 2000
"""A local source folder with more files than this is not fingerprinted (its set is not cached)."""
MAX_CONTENT_BYTES = 256 * 1024 * 1024
""":func:`content_digest` reads at most this much of a folder."""

_SKIP_FOLDERS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".tox", ".nox", "build", "dist"}
_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_WHEEL = re.compile(r"^(?P<name>[A-Za-z0-9_.]+?)-\d[^-]*(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")
_SDIST = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-\d[\w.!+]*\.(?:tar\.gz|tar\.bz2|zip)$")
_DIRECT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)$")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9._-]+)")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_OPTIONS_WITH_PATH = {"-f", "--find-links", "-c", "--constraint"}
_OPTIONS_WITH_VALUE = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "--trusted-host",
    "--no-binary",
    "--only-binary",
    *_OPTIONS_WITH_PATH,
}
_FLAG_OPTIONS = {"--pre", "--no-index", "--prefer-binary", "--require-hashes", "--use-feature"}


class RequirementsError(UserError):
    """The requirements cannot be read (a missing ``-r`` file, an include loop)."""


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name: ``Foo_Bar.baz`` → ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class RequirementLine:
    """One line as the installer will read it.

    ``kind`` is ``requirement`` (``name[extras] spec ; marker`` or ``name @ url``), ``path`` (a
    local wheel, archive or folder), ``url`` (a remote archive or VCS link), ``editable``
    (``-e …``) or ``option`` (``--extra-index-url …``, ``-c …``). ``name`` is the canonical project
    name when the line says it.
    """

    text: str
    kind: str
    name: str | None = None


@dataclass(frozen=True)
class RequirementSet:
    """The requirement lines of one task, in order, and what they depend on besides their text."""

    lines: tuple[RequirementLine, ...] = ()
    source: str = ""
    """``task`` (the record), the requirements file's path relative to the code, or ``""``."""
    digests: tuple[tuple[str, str], ...] = ()
    """``(path, digest)`` of the local files and folders the lines refer to."""
    uncacheable_reason: str = ""
    """Why an environment with these requirements may not be shared between tasks (empty: it may)."""

    @property
    def cacheable(self) -> bool:
        return not self.uncacheable_reason

    def __bool__(self) -> bool:
        return any(line.kind != "option" for line in self.lines)

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]

    def names(self) -> set[str]:
        return {line.name for line in self.lines if line.name}

    def key_data(self) -> dict[str, Any]:
        """What of this set goes into a fingerprint (not where it came from)."""
        return {"lines": self.texts, "digests": [list(pair) for pair in self.digests]}


def task_requirements(
    task: Task,
    *,
    code_dir: Path | None,
    working_dir: Path | None,
    config: Config | None = None,
) -> RequirementSet:
    """The requirement set of ``task`` with its code at ``code_dir`` (None: not checked out)."""
    force_file = bool(config and config.get_bool("agent.package_manager.force_repo_requirements_txt", False))
    record = [line for line in task.requirements.pip if line and line.strip()]
    found = find_requirements_file(code_dir, working_dir)
    if found is not None and (force_file or not record):
        label = os.path.relpath(found, code_dir) if code_dir is not None else str(found)
        return parse_requirements_file(found, source=label, code_dir=code_dir)
    if record:
        base = working_dir if working_dir is not None and working_dir.is_dir() else code_dir
        return parse_requirement_lines(record, base_dir=base, source="task", code_dir=code_dir)
    return RequirementSet()


def read_requirements_file(path: str | Path) -> list[str]:
    """Requirement lines of a requirements.txt, without comments and blank lines, as written:
    what a task records when it is created (``task create --requirements``, a captured working
    copy). ``-r`` lines stay lines; :func:`parse_requirements_file` follows them when the agent
    builds the environment."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"requirements file {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read requirements file {file}: {error}") from None
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line:
            lines.append(line)
    return lines


def find_requirements_file(code_dir: Path | None, working_dir: Path | None) -> Path | None:
    """``requirements.txt`` of the working dir, else of the code's root."""
    for folder in (working_dir, code_dir):
        if folder is None:
            continue
        candidate = folder / REQUIREMENTS_FILE
        if candidate.is_file():
            return candidate
    return None


def parse_requirements_file(path: Path, *, source: str = "", code_dir: Path | None = None) -> RequirementSet:
    """Read a requirements file the way pip does (``-r`` includes, paths relative to each file)."""
    builder = _Builder(code_dir)
    builder.add_file(Path(path).resolve(), stack=())
    return builder.result(source or str(path))


def parse_requirement_lines(
    lines: Iterable[str],
    *,
    base_dir: Path | None = None,
    source: str = "task",
    code_dir: Path | None = None,
) -> RequirementSet:
    """Read requirement lines given directly (a task record), relative paths against ``base_dir``."""
    builder = _Builder(code_dir)
    builder.add_lines(list(lines), base_dir=base_dir, stack=())
    return builder.result(source)


@dataclass
class _Builder:
    code_dir: Path | None
    lines: list[RequirementLine] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    uncacheable: str = ""

    def result(self, source: str) -> RequirementSet:
        return RequirementSet(
            lines=tuple(self.lines),
            source=source,
            digests=tuple(sorted(self.digests.items())),
            uncacheable_reason=self.uncacheable,
        )

    def add_file(self, path: Path, stack: tuple[Path, ...]) -> None:
        if path in stack:
            chain = " → ".join(str(p) for p in (*stack, path))
            raise RequirementsError(f"requirements files include each other in a loop: {chain}")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as error:
            where = f" (included from {stack[-1]})" if stack else ""
            raise RequirementsError(
                f"cannot read the requirements file {path}{where}: {error.strerror or error}"
            ) from None
        self.add_lines(text.splitlines(), base_dir=path.parent, stack=(*stack, path))

    def add_lines(self, raw: Sequence[str], *, base_dir: Path | None, stack: tuple[Path, ...]) -> None:
        for line in _logical_lines(raw):
            self._add(line, base_dir, stack)

    def _add(self, line: str, base_dir: Path | None, stack: tuple[Path, ...]) -> None:
        if line.startswith("-"):
            option, value = _split_option(line)
            if option in ("-r", "--requirement"):
                self.add_file(_absolute(value, base_dir), stack)
                return
            if option in ("-e", "--editable"):
                self._editable(value, base_dir)
                return
            if option in _OPTIONS_WITH_PATH and value and not _URL.match(value):
                target = _absolute(value, base_dir)
                if target.exists():
                    self._digest(target)
                    value = str(target)
            self.lines.append(RequirementLine(f"{option} {value}".strip(), "option"))
            return
        spec, marker = _split_marker(line)
        direct = _DIRECT.match(spec)
        if direct:  # PEP 508: name[extras] @ url
            url = direct.group(3)
            if url.startswith("file:"):
                target = Path(url2pathname(urlsplit(url).path))
                if target.exists():
                    self._digest(target)
            self.lines.append(RequirementLine(_tidy(line), "requirement", canonical_name(direct.group(1))))
            return
        if _URL.match(spec):
            egg = _EGG.search(spec)
            tail = spec.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
            name = canonical_name(egg.group(1)) if egg else _archive_name(tail)
            self.lines.append(RequirementLine(_tidy(line), "url", name))
            return
        if _looks_like_path(spec):
            target = _absolute(spec, base_dir)
            self._digest(target)
            text = str(target) + (f" ; {marker}" if marker else "")
            self.lines.append(RequirementLine(text, "path", _archive_name(target.name)))
            return
        match = _NAME.match(spec)
        name = canonical_name(match.group(1)) if match else None
        self.lines.append(RequirementLine(_tidy(line), "requirement", name))

    def _editable(self, value: str, base_dir: Path | None) -> None:
        if _URL.match(value) and not value.startswith("file:"):
            egg = _EGG.search(value)
            self.lines.append(
                RequirementLine(f"-e {value}", "editable", canonical_name(egg.group(1)) if egg else None)
            )
            return
        target = _absolute(value.removeprefix("file://"), base_dir)
        self.lines.append(RequirementLine(f"-e {target}", "editable", None))
        if not self.uncacheable:
            self.uncacheable = (
                f"the editable requirement -e {value} points into a folder that may change or go away"
            )

    def _digest(self, target: Path) -> None:
        key = str(target)
        if key in self.digests:
            return
        try:
            if target.is_dir():
                digest = _folder_digest(target)
                if digest is None:
                    self.uncacheable = self.uncacheable or (
                        f"the local folder {target} has more than {MAX_FOLDER_FILES} files to fingerprint"
                    )
                    digest = "too-large"
            else:
                status = target.stat()
                digest = f"{status.st_size}:{status.st_mtime_ns}"
        except OSError:
            digest = "missing"
        self.digests[key] = digest


def _logical_lines(raw: Sequence[str]) -> Iterable[str]:
    pending = ""
    for physical in raw:
        text = physical.rstrip("\r\n")
        if text.endswith("\\"):
            pending += text[:-1]
            continue
        text = pending + text
        pending = ""
        text = _strip_comment(text).strip()
        if text:
            yield text
    if pending.strip():
        text = _strip_comment(pending).strip()
        if text:
            yield text


def _strip_comment(text: str) -> str:
    if text.lstrip().startswith("#"):
        return ""
    match = _COMMENT.search(text) if "#" in text else None
    return text[: match.start()] if match else text


def _split_option(line: str) -> tuple[str, str]:
    if line.startswith("--") and "=" in line.split()[0]:
        option, _, value = line.partition("=")
        return option, value.strip()
    parts = line.split(None, 1)
    option = parts[0]
    if option not in _OPTIONS_WITH_VALUE | _FLAG_OPTIONS | {"-r", "--requirement", "-e", "--editable"}:
        # short options glued to their value: -rfile.txt, -e.
        for short in ("-r", "-e", "-c", "-f", "-i"):
            if option.startswith(short) and len(option) > 2 and not option.startswith("--"):
                return short, line[2:].strip()
    return option, parts[1].strip() if len(parts) > 1 else ""


def _split_marker(line: str) -> tuple[str, str]:
    if ";" not in line:
        return line.strip(), ""
    spec, _, marker = line.partition(";")
    return spec.strip(), marker.strip()


_SPACES = re.compile(r"\s+")
_COMMENT = re.compile(r"(^|\s)#")


def _tidy(line: str) -> str:
    return _SPACES.sub(" ", line).strip()


def _looks_like_path(spec: str) -> bool:
    if _URL.match(spec) or " " in spec or "@" in spec:
        return False
    if spec.startswith((".", "/", "~")) or os.sep in spec:
        return True
    return spec.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2"))


def _absolute(value: str, base_dir: Path | None) -> Path:
    path = Path(os.path.expanduser(value))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return Path(os.path.normpath(path.absolute()))


def _archive_name(filename: str) -> str | None:
    for pattern in (_WHEEL, _SDIST):
        match = pattern.match(filename)
        if match:
            return canonical_name(match.group("name"))
    return None


def _folder_digest(folder: Path) -> str | None:
    digest = hashlib.sha256()
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_FOLDERS and not d.endswith(".egg-info"))
        for name in sorted(files):
            count += 1
            if count > MAX_FOLDER_FILES:
                return None
            path = os.path.join(root, name)
            try:
                status = os.stat(path)
            except OSError:
                continue
            relative = os.path.relpath(path, folder)
            digest.update(f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def content_digest(folder: Path) -> str | None:
    """A digest of the files under ``folder``: their relative paths and contents, not their times.

    For a folder inside a task's checkout (a path dependency of a lock file), which is written
    afresh for every task: the same commit gives the same digest. None when the folder holds more
    than :data:`MAX_FOLDER_FILES` files or :data:`MAX_CONTENT_BYTES` bytes (too costly to read
    before every task); build folders, VCS metadata and virtual environments are left out.
    """
    digest = hashlib.sha256()
    count = size = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_FOLDERS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = os.path.join(root, name)
            count += 1
            try:
                with open(path, "rb") as handle:
                    data = handle.read(MAX_CONTENT_BYTES - size + 1)
            except OSError:
                continue
            size += len(data)
            if count > MAX_FOLDER_FILES or size > MAX_CONTENT_BYTES:
                return None
            relative = os.path.relpath(path, folder)
            digest.update(f"{relative}\0{len(data)}\0".encode())
            digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:32]
