"""PyTorch wheels for the machine's CUDA: which index of PyTorch's wheel repository to add.

PyTorch publishes one index per build variant under a common root (``<root>/cu121``,
``<root>/cu118``, ``<root>/cpu``; nightlies under ``<root>/nightly/<variant>``), and its wheels
carry the variant as a local version (``torch-2.3.0+cu121``). With
``agent.package_manager.pytorch_resolve: pip`` (the default) a task that asks for torch,
torchvision or torchaudio gets the index of the newest variant the machine's CUDA can run added as
an extra index: the highest ``cuXY`` not above the CUDA version (drivers run older CUDA builds),
``cpu`` without a GPU. pip then prefers ``2.3.0+cu121`` over PyPI's ``2.3.0`` (a local version
sorts higher), and uv takes torch from the first index that has it. ``none`` leaves torch alone;
``direct`` is treated like ``pip``.

The root is ``agent.package_manager.pytorch_index_url``; the variants it offers are
``agent.package_manager.pytorch_cuda_tags`` (null: the list below).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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
