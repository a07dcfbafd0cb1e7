"""The checks behind ``clearml-core doctor``; each one reports, none of them raises."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from clearml_core.errors import ConfigError, UserError

FREE_SPACE_WARNING_BYTES = 5 * 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warning | error
    detail: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _plugin_checks() -> Iterator[Check]:
    from clearml_core.plugins import get_registry

    for plugin in get_registry().plugins():
        if plugin.status == "loaded":
            yield Check(f"plugin {plugin.name}", "ok", f"{plugin.distribution} {plugin.version}")
        elif plugin.status == "disabled":
            yield Check(f"plugin {plugin.name}", "warning", "disabled by CLEARML_CORE_DISABLE_PLUGINS")
        else:
            yield Check(f"plugin {plugin.name}", "error", plugin.error or plugin.status)


def _config_checks() -> Iterator[Check]:
    from clearml_core.settings import get_config

    config = get_config()
    where = ", ".join(str(f) for f in config.files) or "no clearml.conf (defaults only)"
    yield Check("configuration", "ok", where)


def _control_plane_checks() -> Iterator[Check]:
    """The control plane the agent and the CLI use: opened once, its queues counted."""
    from clearml_core.controlplane import control_plane_origin, control_plane_url, open_control_plane
    from clearml_core.settings import get_config

    config = get_config()
    url = control_plane_url(config)
    where = control_plane_origin(config, url)
    try:
        with open_control_plane(url, config) as plane:
            queues = plane.list_queues()
    except UserError as error:
        raise UserError(f"{url} (from {where}): {error}") from None
    yield Check("control plane", "ok", f"{plane.url} (from {where}; {len(queues)} queue(s))")


def _storage_urls() -> Iterator[tuple[str, str]]:
    """(where it is configured, URL) for every storage location the configuration names."""
    from clearml_core.settings import get_config

    config = get_config()
    for index, entry in enumerate(config.get_list("sdk.aws.s3.credentials")):
        if isinstance(entry, dict):
            place = entry.get("host") or entry.get("bucket") or ""
            yield f"sdk.aws.s3.credentials[{index}]", f"s3://{place}"
    for index, entry in enumerate(config.get_list("sdk.google.storage.credentials")):
        if isinstance(entry, dict):
            yield f"sdk.google.storage.credentials[{index}]", f"gs://{entry.get('bucket', '')}"
    for index, entry in enumerate(config.get_list("sdk.azure.storage.containers")):
        if isinstance(entry, dict):
            account, container = entry.get("account_name", ""), entry.get("container_name", "")
            yield (
                f"sdk.azure.storage.containers[{index}]",
                f"azure://{account}.blob.core.windows.net/{container}",
            )
    for key in ("sdk.development.default_output_uri", "api.files_server"):
        value = config.get_str(key)
        if value:
            yield key, value


def _storage_checks() -> Iterator[Check]:
    from clearml_core.plugins import get_registry
    from clearml_core.storage.hints import install_hint

    registry = get_registry()
    for place, url in _storage_urls():
        scheme = urlsplit(url).scheme.lower() or "file"
        try:
            backend = registry.storage_backend_for(scheme)
        except UserError as error:  # two plugins claim the scheme: this location alone is broken
            yield Check(f"storage {place}", "error", f"{url}: {error}")
            continue
        if backend is not None:
            yield Check(f"storage {place}", "ok", f"{url}: backend {backend.name}")
        elif install_hint(scheme):
            yield Check(f"storage {place}", "error", f"{url}: {install_hint(scheme)}")
        else:
            yield Check(
                f"storage {place}", "warning", f"{url}: no plugin claims {scheme}://; fsspec is tried"
            )


def _tool_checks() -> Iterator[Check]:
    for tool, required in (("git", True), ("uv", False), ("docker", False)):
        path = shutil.which(tool)
        if path is None:
            status = "error" if required else "warning"
            yield Check(f"tool {tool}", status, "not found on PATH")
            continue
        try:
            version = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as error:
            version = f"{path} (--version failed: {error})"
        yield Check(f"tool {tool}", "ok", version.splitlines()[0] if version else path)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _disk_checks() -> Iterator[Check]:
    from clearml_core.settings import get_config

    config = get_config()
    folders = {
        "cache": config.path("sdk.storage.cache.default_base_dir", "~/.clearml-core/cache"),
        "venvs": config.path("agent.venvs_cache.path")
        or config.path("agent.venvs_dir", "~/.clearml-core/venvs"),
    }
    for name, folder in folders.items():
        if folder is None:
            continue
        free = shutil.disk_usage(_nearest_existing(folder)).free
        status = "ok" if free >= FREE_SPACE_WARNING_BYTES else "warning"
        yield Check(f"disk {name}", status, f"{folder}: {free / 1024**3:.1f} GiB free")


def run_checks() -> list[Check]:
    checks: list[Check] = []
    # (name, checks, whether it reads the configuration): once the configuration fails to load,
    # the sections that read it would only repeat that error, so they say they were not run
    sections: list[tuple[str, Callable[[], Iterator[Check]], bool]] = [
        ("plugins", _plugin_checks, False),
        ("configuration", _config_checks, True),
        ("control plane", _control_plane_checks, True),
        ("storage", _storage_checks, True),
        ("tools", _tool_checks, False),
        ("disk", _disk_checks, True),
    ]
    config_failed = False
    for name, section, reads_config in sections:
        if reads_config and config_failed:
            checks.append(Check(name, "warning", "not checked: the configuration does not load"))
            continue
        try:
            checks.extend(section())
        except UserError as error:
            checks.append(Check(name, "error", str(error)))
            config_failed = config_failed or (reads_config and isinstance(error, ConfigError))
    return checks
