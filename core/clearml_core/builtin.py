"""The core's own implementations, registered through the same hooks as any plugin."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl

_DEFAULTS = Path(__file__).parent / "config" / "defaults"


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return sorted(_DEFAULTS.glob("*.conf"))
