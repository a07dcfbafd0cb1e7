"""PyTorch wheels for the machine's CUDA: which index of PyTorch's wheel repository to add.

PyTorch publishes one index per build variant under a common root (``<root>/cu121``,
``<root>/cu118``, ``<root>/cpu``; nightlies under ``<root>/nightly/<variant>``), and its wheels
carry the variant as a local version (``torch-2.3.0+cu121``). With
``agent.package_manager.pytorch_resolve: pip`` (the default) a task that asks for torch,
torchvision or torchaudio gets the index of the newest variant the machine's CUDA can run added as
an extra index: the highest ``cuXY`` not above the CUDA version (drivers run older CUDA builds),
``cpu`` without a GPU. pip then prefers ``2.3.0+cu121`` over PyPI's ``2.3.0`` (a local version
sorts higher), and uv takes torch from the first index that has it. ``none`` leaves torch alone.

``direct`` (clearml-agent's meaning) pins each torch requirement to one wheel's URL instead: the
variant indexes are read newest CUDA first (every ``cuXY`` the machine runs, then ``cpu``) and
the first that has a wheel satisfying the requirement for the task's interpreter wins, so an old
torch that has no build for the newest variant still gets a CUDA build rather than PyPI's. What
no variant has is left to the extra index, as with ``pip``.

The root is ``agent.package_manager.pytorch_index_url``; the variants it offers are
``agent.package_manager.pytorch_cuda_tags`` (null: the list below).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, urljoin, urlsplit

from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, platform_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

TORCH_PACKAGES = frozenset(
    {"torch", "torchvision", "torchaudio", "torchtext", "torchdata", "torchrec", "torchao"}
)
KNOWN_CUDA_TAGS = (
    "cu92",
    "cu100",
    "cu101",
    "cu102",
    "cu110",
    "cu111",
    "cu113",
    "cu115",
    "cu116",
    "cu117",
    "cu118",
    "cu121",
    "cu124",
    "cu126",
    "cu128",
    "cu129",
    "cu130",
)
"""Variants PyTorch's wheel repository has published (for some torch version)."""


def _tag_version(tag: str) -> tuple[int, int]:
    digits = tag[2:]
    return int(digits[:-1]), int(digits[-1])


def pick_variant(cuda_version: str | None, tags: Sequence[str] = KNOWN_CUDA_TAGS) -> str:
    """The wheel variant for a CUDA version: ``"12.2"`` → ``"cu121"``; None → ``"cpu"``.

    The newest ``cuXY`` not above the version; ``cpu`` when none fits (a driver older than every
    variant).
    """
    if cuda_version is None:
        return "cpu"
    major, minor = (int(part) for part in cuda_version.split(".")[:2])
    candidates = [
        tag for tag in tags if re.fullmatch(r"cu\d{2,4}", tag) and _tag_version(tag) <= (major, minor)
    ]
    if not candidates:
        return "cpu"
    return max(candidates, key=_tag_version)


def index_url(root: str, variant: str, *, nightly: bool = False) -> str:
    """``https://…/whl`` + ``cu121`` → ``https://…/whl/cu121`` (``…/whl/nightly/cu121``)."""
    return f"{root.rstrip('/')}/{'nightly/' if nightly else ''}{variant}"


def wants_torch(names: Iterable[str | None]) -> bool:
    return any(name in TORCH_PACKAGES for name in names if name)


def variants_to_try(cuda_version: str | None, tags: Sequence[str] = KNOWN_CUDA_TAGS) -> list[str]:
    """Direct resolution's order: every ``cuXY`` the CUDA version runs, newest first, then ``cpu``."""
    usable: list[str] = []
    if cuda_version is not None:
        major, minor = (int(part) for part in cuda_version.split(".")[:2])
        usable = [
            tag for tag in tags if re.fullmatch(r"cu\d{2,4}", tag) and _tag_version(tag) <= (major, minor)
        ]
    return [*sorted(usable, key=_tag_version, reverse=True), "cpu"]


_HREF = re.compile(r"<a\s[^>]*?href\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)


def wheel_links(page_url: str, page: str) -> list[str]:
    """Absolute URLs of the wheels a PEP 503 project page lists (hash fragments kept)."""
    links = (urljoin(page_url, html.unescape(href)) for href in _HREF.findall(page))
    return [link for link in links if urlsplit(link).path.endswith(".whl")]


def interpreter_tags(implementation: str, version: str) -> list[Tag]:
    """The wheel tags a CPython ``version`` (``3.11.7``) on this machine installs, best first;
    empty for other implementations (their wheels are left to the installer)."""
    if implementation.lower() != "cpython":
        return []
    python_version = tuple(int(part) for part in version.split(".")[:2])
    platforms = list(platform_tags())
    interpreter = f"cp{python_version[0]}{python_version[1]}"
    return [
        *cpython_tags(python_version, platforms=platforms),
        *compatible_tags(python_version, interpreter, platforms),
    ]


def best_wheel(
    requirement: Requirement, links: Iterable[str], supported: Sequence[Tag], *, prereleases: bool = False
) -> str | None:
    """The URL of the newest wheel of ``links`` that satisfies ``requirement`` and installs with
    one of ``supported`` (the best-ranked tag breaks ties)."""
    rank = {tag: index for index, tag in enumerate(supported)}
    wanted = canonicalize_name(requirement.name)
    best: tuple[tuple[Version, int], str] | None = None
    for url in links:
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        try:
            name, version, _build, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        allow = prereleases or bool(requirement.specifier.prereleases)  # torch==2.5.0.dev… asks for one
        if name != wanted or not requirement.specifier.contains(version, prereleases=allow):
            continue
        fit = min((rank[tag] for tag in tags if tag in rank), default=None)
        if fit is None:
            continue
        key = (version, -fit)
        if best is None or key > best[0]:
            best = (key, url)
    return best[1] if best is not None else None


def direct_line(requirement: Requirement, url: str) -> str:
    """``requirement`` pinned to the wheel at ``url`` (PEP 508), extras and markers kept."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    marker = f" ; {requirement.marker}" if requirement.marker else ""
    return f"{requirement.name}{extras} @ {url}{marker}"
