"""The pip plugin's tests use the environment tests' wheels, local indexes and configurations."""

from __future__ import annotations

from tests.environments.conftest import (  # noqa: F401  (fixtures)
    download_cache,
    env_config,
    index_root,
    offline_index,
)
