"""``docker run`` switches turned into what the engine's API takes (the Docker SDK's ``create``).

clearml-agent hands its argument list to the ``docker`` command; here the engine is called through
its API, so each switch is read and becomes a field of the container's configuration. The switches
a task may use are the ones in :data:`SWITCHES`; anything else fails the task with one line that
says which switch and what is supported, rather than being dropped silently. ``-e`` / ``--env`` /
``--env-file`` values are kept apart (:attr:`ContainerOptions.environment`): they reach the
container through its mounted environment file, so they never show in ``docker inspect``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ArgumentError(ValueError):
    """A docker argument that cannot be passed to the engine; the message says which and why."""


@dataclass
class ContainerOptions:
    """What the arguments ask of the engine."""

    create: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the SDK's ``containers.create`` (``network_mode``, ``mem_limit``, …)."""
    environment: dict[str, str] = field(default_factory=dict)
    binds: list[str] = field(default_factory=list)
    mounts: list[Any] = field(default_factory=list)
    ports: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    gpus: str | None = None
    """``--gpus`` as written in the arguments (``all``, ``device=0,1``, ``2``); None: not given."""
    pull: str | None = None
    """``--pull always|missing|never``."""
    notes: list[str] = field(default_factory=list)
    """Switches accepted but without effect here (``--rm``: containers are always removed)."""

    @property
    def network(self) -> str | None:
        return self.create.get("network_mode")


Handler = Callable[[ContainerOptions, str], None]


def _set(key: str, convert: Callable[[str], Any] = str) -> Handler:
    def handle(options: ContainerOptions, value: str) -> None:
        options.create[key] = convert(value)

    return handle


def _append(key: str, convert: Callable[[str], Any] = str) -> Handler:
    def handle(options: ContainerOptions, value: str) -> None:
        options.create.setdefault(key, []).append(convert(value))

    return handle


def _size(switch: str) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        from docker.utils import parse_bytes

        try:
            parse_bytes(value)
        except Exception:
            raise ArgumentError(f"{switch} {value!r} is not a size (write it as 512m, 2g, …)") from None
        return value

    return convert


def _number(switch: str, kind: Callable[[str], Any] = int) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise ArgumentError(f"{switch} {value!r} is not a number") from None

    return convert


def _env(options: ContainerOptions, value: str) -> None:
    name, sep, text = value.partition("=")
    if not name:
        raise ArgumentError(f"-e {value!r} names no variable (write -e NAME=value)")
    if sep:
        options.environment[name] = text
    elif name in os.environ:  # `-e NAME` passes the agent's own value, as the docker CLI does
        options.environment[name] = os.environ[name]


def _env_file(options: ContainerOptions, value: str) -> None:
    path = Path(value).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ArgumentError(f"--env-file {value}: cannot read it ({error.strerror or error})") from None
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            _env(options, line)


def _volume(options: ContainerOptions, value: str) -> None:
    parts = value.split(":")
    if len(parts) == 1:  # an anonymous volume at that path
        from docker.types import Mount

        options.mounts.append(Mount(target=parts[0], source=None, type="volume"))
        return
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise ArgumentError(f"-v {value!r} is not SOURCE:TARGET[:OPTIONS]")
    source = parts[0]
    if source.startswith(("~", ".")) or "/" in source:
        path = Path(source).expanduser().absolute()
        if not path.exists():  # as the docker CLI does for -v
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ArgumentError(f"-v {value}: cannot create {path} ({error.strerror or error})") from None
        source = str(path)
    options.binds.append(":".join([source, *parts[1:]]))


def _mount(options: ContainerOptions, value: str) -> None:
    from docker.types import Mount

    fields: dict[str, str] = {}
    for item in value.split(","):
        key, sep, text = item.partition("=")
        fields[key.strip()] = text.strip() if sep else "true"
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        raise ArgumentError(f"--mount {value!r} has no target=")
    readonly = fields.get("readonly", fields.get("ro", "false")).lower() in ("true", "1", "")
    options.mounts.append(
        Mount(
            target=target,
            source=fields.get("source") or fields.get("src"),
            type=fields.get("type", "volume"),
            read_only=readonly,
        )
    )


def _publish(options: ContainerOptions, value: str) -> None:
    spec, _, protocol = value.partition("/")
    parts = spec.split(":")
    container = parts[-1]
    if not container:
        raise ArgumentError(f"-p {value!r} is not [[IP:]HOST:]CONTAINER[/PROTOCOL]")
    key = f"{container}/{protocol or 'tcp'}"
    binding: Any
    if len(parts) == 1:
        binding = None
    elif len(parts) == 2:
        binding = int(parts[0]) if parts[0].isdigit() else (parts[0] or None)
    else:
        binding = (":".join(parts[:-2]), int(parts[-2]) if parts[-2].isdigit() else None)
    options.ports[key] = binding


def _expose(options: ContainerOptions, value: str) -> None:
    port, _, protocol = value.partition("/")
    options.ports.setdefault(f"{port}/{protocol or 'tcp'}", None)


def _label(options: ContainerOptions, value: str) -> None:
    name, _, text = value.partition("=")
    options.labels[name] = text


def _key_value(key: str, separator: str = "=") -> Handler:
    def handle(options: ContainerOptions, value: str) -> None:
        name, sep, text = value.partition(separator)
        if not sep:
            raise ArgumentError(f"{value!r} is not NAME{separator}VALUE")
        options.create.setdefault(key, {})[name] = text

    return handle


def _ulimit(options: ContainerOptions, value: str) -> None:
    from docker.types import Ulimit

    name, _, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        options.create.setdefault("ulimits", []).append(
            Ulimit(name=name, soft=int(soft), hard=int(hard or soft))
        )
    except ValueError:
        raise ArgumentError(f"--ulimit {value!r} is not NAME=SOFT[:HARD]") from None


def _tmpfs(options: ContainerOptions, value: str) -> None:
    path, _, mount_options = value.partition(":")
    options.create.setdefault("tmpfs", {})[path] = mount_options


def _gpus(options: ContainerOptions, value: str) -> None:
    options.gpus = value.strip().strip('"')


def _pull(options: ContainerOptions, value: str) -> None:
    if value not in ("always", "missing", "never"):
        raise ArgumentError(f"--pull {value!r}: use always, missing or never")
    options.pull = value


def _cpus(value: str) -> int:
    return int(_number("--cpus", float)(value) * 1e9)


def _ignored(reason: str) -> Handler:
    def handle(options: ContainerOptions, value: str) -> None:
        if reason:
            options.notes.append(reason)

    return handle


def _flag(value: str) -> bool:
    return value.lower() not in ("false", "0", "no")


# switch → (takes a value, handler); aliases share one entry
SWITCHES: dict[str, tuple[bool, Handler]] = {
    "env": (True, _env),
    "env-file": (True, _env_file),
    "volume": (True, _volume),
    "mount": (True, _mount),
    "publish": (True, _publish),
    "expose": (True, _expose),
    "network": (True, _set("network_mode")),
    "ipc": (True, _set("ipc_mode")),
    "pid": (True, _set("pid_mode")),
    "uts": (True, _set("uts_mode")),
    "userns": (True, _set("userns_mode")),
    "security-opt": (True, _append("security_opt")),
    "cap-add": (True, _append("cap_add")),
    "cap-drop": (True, _append("cap_drop")),
    "device": (True, _append("devices")),
    "device-cgroup-rule": (True, _append("device_cgroup_rules")),
    "group-add": (True, _append("group_add")),
    "dns": (True, _append("dns")),
    "dns-search": (True, _append("dns_search")),
    "dns-option": (True, _append("dns_opt")),
    "add-host": (True, _key_value("extra_hosts", ":")),
    "sysctl": (True, _key_value("sysctls")),
    "shm-size": (True, _set("shm_size", _size("--shm-size"))),
    "memory": (True, _set("mem_limit", _size("--memory"))),
    "memory-swap": (True, _set("memswap_limit", _size("--memory-swap"))),
    "memory-reservation": (True, _set("mem_reservation", _size("--memory-reservation"))),
    "memory-swappiness": (True, _set("mem_swappiness", _number("--memory-swappiness"))),
    "cpus": (True, _set("nano_cpus", _cpus)),
    "cpu-shares": (True, _set("cpu_shares", _number("--cpu-shares"))),
    "cpu-period": (True, _set("cpu_period", _number("--cpu-period"))),
    "cpu-quota": (True, _set("cpu_quota", _number("--cpu-quota"))),
    "cpuset-cpus": (True, _set("cpuset_cpus")),
    "cpuset-mems": (True, _set("cpuset_mems")),
    "pids-limit": (True, _set("pids_limit", _number("--pids-limit"))),
    "oom-score-adj": (True, _set("oom_score_adj", _number("--oom-score-adj"))),
    "ulimit": (True, _ulimit),
    "tmpfs": (True, _tmpfs),
    "user": (True, _set("user")),
    "workdir": (True, _set("working_dir")),
    "hostname": (True, _set("hostname")),
    "domainname": (True, _set("domainname")),
    "mac-address": (True, _set("mac_address")),
    "label": (True, _label),
    "runtime": (True, _set("runtime")),
    "platform": (True, _set("platform")),
    "cgroup-parent": (True, _set("cgroup_parent")),
    "cgroupns": (True, _set("cgroupns")),
    "stop-signal": (True, _set("stop_signal")),
    "log-driver": (True, lambda o, v: o.create.setdefault("log_config", {}).update(type=v)),
    "log-opt": (
        True,
        lambda o, v: o.create.setdefault("log_config", {}).setdefault("config", {}).update([v.split("=", 1)]),
    ),
    "entrypoint": (True, _set("entrypoint", lambda value: shlex.split(value) or [""])),
    "name": (True, _set("name")),
    "gpus": (True, _gpus),
    "pull": (True, _pull),
    "restart": (True, _ignored("--restart: a task's container is removed when the task ends")),
    "privileged": (False, _set("privileged", _flag)),
    "read-only": (False, _set("read_only", _flag)),
    "init": (False, _set("init", _flag)),
    "oom-kill-disable": (False, _set("oom_kill_disable", _flag)),
    "publish-all": (False, _set("publish_all_ports", _flag)),
    "rm": (False, _ignored("")),
    "tty": (False, _ignored("")),
    "interactive": (False, _ignored("")),
    "detach": (False, _ignored("")),
    "sig-proxy": (False, _ignored("")),
}
ALIASES = {
    "e": "env",
    "v": "volume",
    "p": "publish",
    "net": "network",
    "m": "memory",
    "c": "cpu-shares",
    "u": "user",
    "w": "workdir",
    "h": "hostname",
    "l": "label",
    "P": "publish-all",
    "t": "tty",
    "i": "interactive",
    "d": "detach",
}


def translate(tokens: Sequence[str]) -> ContainerOptions:
    """Read ``tokens`` (already merged, see :mod:`clearml_core_runner_docker.arguments`)."""
    options = ContainerOptions()
    pending = list(tokens)
    while pending:
        token = pending.pop(0)
        if not token.startswith("-") or token in ("-", "--"):
            raise ArgumentError(
                f"the docker argument {token!r} is not a switch (write switches like --ipc=host or -e NAME=value)"
            )
        name, has_value, value = token.lstrip("-").partition("=")
        if (  # -it: several short flags, all without effect here
            not token.startswith("--")
            and len(name) > 1
            and not has_value
            and all(ALIASES.get(letter) in ("tty", "interactive", "detach") for letter in name)
        ):
            continue
        name = ALIASES.get(name, name)
        entry = SWITCHES.get(name)
        if entry is None:
            raise ArgumentError(
                f"the docker argument {token} is not one clearml-core passes to the engine; supported: "
                + ", ".join(f"--{switch}" for switch in sorted(SWITCHES))
            )
        takes_value, handler = entry
        if takes_value and not has_value:
            if not pending:
                raise ArgumentError(f"the docker argument {token} needs a value")
            value = pending.pop(0)
        elif not takes_value and not has_value:
            value = "true"
        handler(options, value)
    return options


__all__ = ["ALIASES", "SWITCHES", "ArgumentError", "ContainerOptions", "translate"]
