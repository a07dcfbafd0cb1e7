"""What a task's container sees of this machine: the mounted folders, and the configuration inside.

Mounted into every container:

* the run folder (``/clearml-core/run``, private to the task: its record, the configuration file,
  the environment file, the scripts, and ``result.json`` written back);
* the wheels of this clearml-core (``/clearml-core/wheelhouse``, read-only) and the agent
  environments made from them (``/clearml-core/agents``), and uv when this machine has it
  (``/clearml-core/bin/uv``, read-only), which then also builds the task's environment;
* the task's folder, at the same path as here;
* the embedded control plane's folder, at the same path (SQLite is a local file), so a task that
  talks to the control plane reaches it;
* the caches, where ``agent.docker_internal_mounts`` says: the VCS cache, the environment cache,
  the installers' download cache, pip's cache (``agent.docker_pip_cache``), apt's
  (``agent.docker_apt_cache``) and the storage cache;
* unless ``agent.disable_ssh_mount``: ``SSH_AUTH_SOCK``'s socket, or a copy of ``~/.ssh``, and
  ``~/.gitconfig`` / ``~/.git-credentials``.

An agent that itself runs in a container (Kubernetes) sees its folders under other paths than
the engine does; ``CLEARML_AGENT_K8S_HOST_MOUNT=/node/path:/pod/path`` says how they map (as in
clearml-agent): every mount's source is translated, a cache outside the mapped folder is left out
with a note, and a folder the task cannot run without is a clear failure.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearml_core.config import Config

RUN = "/clearml-core/run"
WHEELHOUSE = "/clearml-core/wheelhouse"
AGENTS = "/clearml-core/agents"
BIN = "/clearml-core/bin"
HOST_MOUNT_VARIABLE = "CLEARML_AGENT_K8S_HOST_MOUNT"
LEGACY_HOST_MOUNT_VARIABLE = "TRAINS_AGENT_K8S_HOST_MOUNT"
DISABLE_SSH_VARIABLE = "CLEARML_AGENT_DISABLE_SSH_MOUNT"
FORCE_SITE_PACKAGES_VARIABLE = "CLEARML_AGENT_FORCE_SYSTEM_SITE_PACKAGES"
MOUNTS = "agent.docker_internal_mounts"


@dataclass(frozen=True)
class Mount:
    source: Path
    """The folder or file as this agent sees it."""
    target: str
    read_only: bool = False
    required: bool = True
    """False for caches: without them the task runs, only slower."""


def inside(path: str) -> str:
    """A path inside the container: ``~`` is root's home there (mount targets must be absolute)."""
    return "/root" + path[1:] if path.startswith("~") else path


class HostMounts:
    """``CLEARML_AGENT_K8S_HOST_MOUNT``: the engine's path of a folder this agent sees."""

    def __init__(self, value: str | None = None) -> None:
        value = (
            value
            if value is not None
            else os.environ.get(HOST_MOUNT_VARIABLE) or os.environ.get(LEGACY_HOST_MOUNT_VARIABLE, "")
        )
        node, _, pod = value.strip().partition(":")
        self.node = node.rstrip("/")
        self.pod = pod.rstrip("/")

    @property
    def active(self) -> bool:
        return bool(self.node and self.pod)

    def engine_path(self, path: Path) -> str | None:
        text = str(path)
        if not self.active:
            return text
        if text == self.pod or text.startswith(self.pod + "/"):
            return self.node + text[len(self.pod) :]
        return None

    def binds(self, mounts: list[Mount]) -> tuple[list[str], list[str]]:
        """The engine's ``SOURCE:TARGET[:ro]`` list, and notes about caches left out.

        A required mount outside the mapped folder raises :class:`LayoutError`."""
        binds, notes = [], []
        for mount in mounts:
            source = self.engine_path(mount.source)
            if source is None:
                if mount.required:
                    raise LayoutError(
                        f"{mount.source} is not under {self.pod}, the folder {HOST_MOUNT_VARIABLE} maps to "
                        f"{self.node} on the node; put it there so the container can mount it"
                    )
                notes.append(f"{mount.source} is not under {self.pod} ({HOST_MOUNT_VARIABLE}): not mounted")
                continue
            binds.append(f"{source}:{mount.target}" + (":ro" if mount.read_only else ""))
        return binds, notes


class LayoutError(Exception):
    """A folder the container needs cannot be mounted."""


def _host_path(config: Config, key: str, default: str | None = None) -> Path | None:
    value = (config.get_str(key, default) or "").strip()
    return Path(os.path.expandvars(value)).expanduser().absolute() if value else None


def cache_mounts(config: Config) -> list[Mount]:
    """The caches of the module docstring that are configured, their host folders created."""
    from clearml_core.environments.cache import cache_root

    mounts: list[tuple[Path | None, str]] = []
    if config.get_bool("agent.vcs_cache.enabled", True):
        mounts.append((_host_path(config, "agent.vcs_cache.path"), internal(config, "vcs_cache")))
    venvs = (config.get_str("agent.venvs_cache.path", "") or "").strip()
    if venvs:
        mounts.append((cache_root(venvs), str(cache_root(internal(config, "venvs_cache")))))
    if config.get_bool("agent.pip_download_cache.enabled", True):
        mounts.append((_host_path(config, "agent.pip_download_cache.path"), internal(config, "pip_download")))
    mounts.append((_host_path(config, "agent.docker_pip_cache"), internal(config, "pip_cache")))
    mounts.append((_host_path(config, "agent.docker_apt_cache"), internal(config, "apt_cache")))
    mounts.append((storage_cache_dir(config), internal(config, "sdk_cache")))
    result = []
    for source, target in mounts:
        if source is None or not target:
            continue
        source.mkdir(parents=True, exist_ok=True)
        result.append(Mount(source, target, required=False))
    return result


def storage_cache_dir(config: Config) -> Path:
    from clearml_core.storage.cache.settings import cache_base_dir

    return cache_base_dir(config)


def internal(config: Config, name: str) -> str:
    return inside(config.get_str(f"{MOUNTS}.{name}", "") or "")


def ssh_mounts(config: Config, run_dir: Path) -> tuple[list[Mount], dict[str, str], str | None, str | None]:
    """What the container gets of this user's ssh and git setup: mounts, variables, and the
    folders the script copies into place (ssh, git files); nothing with ``disable_ssh_mount``."""
    disabled = config.get_bool("agent.disable_ssh_mount", False) or os.environ.get(
        DISABLE_SSH_VARIABLE, ""
    ).strip().lower() in ("1", "true", "yes", "on")
    if disabled:
        return [], {}, None, None
    mounts: list[Mount] = []
    environ: dict[str, str] = {}
    ssh_copy = None
    socket = os.environ.get("SSH_AUTH_SOCK", "").strip()
    ro_folder = internal(config, "ssh_ro_folder") or "/.ssh"
    if socket and Path(socket).exists():
        mounts.append(Mount(Path(socket), socket, required=False))
        environ["SSH_AUTH_SOCK"] = socket
    else:
        home_ssh = Path("~/.ssh").expanduser()
        if home_ssh.is_dir():
            copy_dir = run_dir / "ssh"
            shutil.copytree(home_ssh, copy_dir, symlinks=False, dirs_exist_ok=True)
            mounts.append(Mount(copy_dir, ro_folder, read_only=True, required=False))
            ssh_copy = ro_folder
    git_files = [Path(name).expanduser() for name in ("~/.gitconfig", "~/.git-credentials")]
    git_folder = None
    present = [path for path in git_files if path.is_file()]
    if present:
        folder = run_dir / "git"
        folder.mkdir(exist_ok=True)
        for path in present:
            shutil.copy2(path, folder / path.name)
        git_folder = ro_folder.rstrip("/") + ".git"
        mounts.append(Mount(folder, git_folder, read_only=True, required=False))
    return mounts, environ, ssh_copy, git_folder


def container_config(config: Config, *, control_plane: str, build: bool = False) -> dict[str, Any]:
    """The configuration the agent inside reads: what this one sets beyond the defaults (those
    the agent inside has too), with the caches at their mount points, the container's own Python
    and CUDA, and (as clearml-agent does) the image's packages visible to the task's environment
    unless ``CLEARML_AGENT_FORCE_SYSTEM_SITE_PACKAGES`` is false."""
    tree: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    for key, value in config.leaves():
        if config.origin(key) != "default":
            put(key, copy.deepcopy(value))
    put("agent.control_plane", control_plane)
    put("agent.python_binary", "")
    put("agent.cuda_version", None)
    put("agent.execution_env", "")
    put("agent.venvs_dir", config.get_str(f"{MOUNTS}.venv_build", "~/.clearml/venvs-builds"))
    if build:  # what `docker run IMAGE` reads must be inside the image, not in a mount
        put("agent.vcs_cache.path", "/clearml-core/vcs-cache")
        put("agent.venvs_cache.path", "")
    else:
        put("agent.vcs_cache.path", internal(config, "vcs_cache"))
        put("agent.venvs_cache.path", internal(config, "venvs_cache"))
        put("agent.pip_download_cache.path", internal(config, "pip_download"))
        put("sdk.storage.cache.default_base_dir", internal(config, "sdk_cache"))
    forced = os.environ.get(FORCE_SITE_PACKAGES_VARIABLE, "").strip().lower()
    if forced not in ("0", "false", "no", "off"):
        put("agent.package_manager.system_site_packages", True)
    return tree


__all__ = [
    "AGENTS",
    "BIN",
    "RUN",
    "WHEELHOUSE",
    "HostMounts",
    "LayoutError",
    "Mount",
    "cache_mounts",
    "container_config",
    "inside",
    "ssh_mounts",
]
