"""``docker``: the execution environment that runs each task in its own container.

:class:`DockerEnvironment` is what the ``runner_docker`` entry point registers. It reshapes the
agent's pipeline (:meth:`DockerEnvironment.stages`: ``code``, ``environment`` and ``run`` become
one :class:`~clearml_core_runner_docker.stage.RunInContainer`), and for each task:

* ``prepare``: reaches the engine (docker, or podman's socket with ``--podman``), makes sure the
  image is here (pulled when missing, or always with ``agent.docker_force_pull`` / ``--pull
  always``), and gets the wheels of this clearml-core ready (:mod:`.wheelhouse`);
* ``start``: creates and starts the container (:mod:`.container`).

When a daemon starts, :meth:`DockerEnvironment.clean_up_orphans` stops and removes the containers
that daemons of this machine which died (``kill -9``) left behind, on podman with ``--podman``
(:mod:`.reaper`).
``agent build --docker`` is :meth:`DockerEnvironment.build_image` (:mod:`.build`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.runners.base import (
    ExecutionEnvironment,
    ExecutionError,
    ImageBuild,
    LaunchSpec,
    LogSink,
    PipelineStage,
)
from clearml_core_runner_docker import layout
from clearml_core_runner_docker.engine import api_errors, connect, image_id, short_error

if TYPE_CHECKING:
    from clearml_core_runner_docker.container import DockerExecution
    from clearml_core_runner_docker.wheelhouse import Wheelhouse

REQUIREMENT_VARIABLE = "CLEARML_AGENT_DOCKER_AGENT_REPO"
LEGACY_REQUIREMENT_VARIABLE = "FORCE_CLEARML_AGENT_REPO"
START_SCRIPT = Path(__file__).with_name("container") / "start_agent.py"


@dataclass(frozen=True)
class PreparedImage:
    """What ``prepare`` found out: the image, the wheels, and the agent environment inside."""

    image_id: str
    wheelhouse: Wheelhouse
    agents_dir: Path
    uv: str | None
    index_requirement: str = ""

    @property
    def agent_key(self) -> str:
        text = f"{self.image_id}|{self.wheelhouse.digest}|{self.index_requirement}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def mounts(self) -> list[layout.Mount]:
        mounts = [
            layout.Mount(self.wheelhouse.path, layout.WHEELHOUSE, read_only=True),
            layout.Mount(self.agents_dir, layout.AGENTS),
        ]
        if self.uv:
            mounts.append(layout.Mount(Path(self.uv), f"{layout.BIN}/uv", read_only=True, required=False))
        return mounts

    def agent_plan(self, command: list[str], *, venv: str | None = None) -> dict[str, Any]:
        """What ``start_agent.py`` reads: where the agent's environment goes and what it runs."""
        key = self.agent_key
        return {
            "venv": venv or f"{layout.AGENTS}/{key}",
            "wheelhouse": layout.WHEELHOUSE,
            "requirements": list(self.wheelhouse.requirements),
            "alone": list(self.wheelhouse.without_dependencies),
            "index_requirement": self.index_requirement,
            "uv": f"{layout.BIN}/uv" if self.uv else None,
            "result": f"{layout.RUN}/result.json",
            "command": command,
            # parsed configuration defaults are kept between tasks, as on the host
            "environ": {"XDG_CACHE_HOME": f"{layout.AGENTS}/{key}.cache"},
        }

    @staticmethod
    def start_script() -> str:
        return START_SCRIPT.read_text(encoding="utf-8")

    @staticmethod
    def start_command() -> list[str]:
        return ["python3", f"{layout.RUN}/start_agent.py", f"{layout.RUN}/agent.json"]


class DockerEnvironment(ExecutionEnvironment):
    """Each task in its own container (see the module docstring)."""

    name = "docker"

    # -- the pipeline ------------------------------------------------------------------------
    def stages(self, stages: list[PipelineStage]) -> list[PipelineStage]:
        from clearml_core_runner_docker.stage import RunInContainer

        result: list[PipelineStage] = []
        for stage in stages:
            if stage.name in ("code", "environment"):
                continue  # they happen inside the container
            result.append(RunInContainer() if stage.name == "run" else stage)
        return result

    # -- one task ----------------------------------------------------------------------------
    def _settings(self) -> Any:
        if self.config is None:
            from clearml_core.settings import get_config

            self.config = get_config()
        return self.config

    def cache_root(self) -> Path:
        config = self._settings()
        value = (
            config.get_str("agent.docker_agent_cache", "~/.clearml-core/docker") or "~/.clearml-core/docker"
        )
        return Path(value).expanduser().absolute()

    def index_requirement(self) -> str:
        import os

        named = os.environ.get(REQUIREMENT_VARIABLE) or os.environ.get(LEGACY_REQUIREMENT_VARIABLE) or ""
        return (named or self._settings().get_str("agent.docker_agent_requirement", "") or "").strip()

    def prepare(self, spec: LaunchSpec, sink: LogSink) -> LaunchSpec:
        from clearml_core_pkgmgr_pip.tools import find_uv

        from clearml_core_runner_docker import wheelhouse

        request = spec.extra["container"]
        client = connect(podman=bool(spec.extra.get("podman")))
        found = ensure_image(
            client, request.image, request.pull or "missing", request.create.get("platform"), sink
        )
        root = self.cache_root()
        houses = wheelhouse.ensure(root, lambda line: sink.write("agent", f"clearml-core: {line}"))
        agents = root / "agents"
        agents.mkdir(parents=True, exist_ok=True)
        prepared = PreparedImage(found, houses, agents, find_uv(), self.index_requirement())
        return dataclasses.replace(spec, extra={**spec.extra, "client": client, "prepared": prepared})

    def start(self, spec: LaunchSpec, sink: LogSink) -> DockerExecution:
        from clearml_core_runner_docker.container import DockerExecution, create

        client = spec.extra["client"]
        container = create(client, spec.extra["container"])
        collapse = self._settings().get_bool("agent.suppress_carriage_return", True)
        execution = DockerExecution(client, container, sink, collapse_cr=collapse)
        try:
            execution.begin()
        except BaseException:
            execution.remove()
            raise
        return execution

    # -- the daemon's start ------------------------------------------------------------------
    def clean_up_orphans(self, extra: Mapping[str, Any] | None = None) -> list[str]:
        from clearml_core_runner_docker.reaper import clean_up

        try:
            client = connect(podman=bool((extra or {}).get("podman")))
        except ExecutionError as error:
            return [f"cannot look for containers left by dead agents: {error}"]
        grace = self._settings().get_float("agent.abort_grace_sec", 1.0) or 1.0
        return clean_up(client, grace)

    # -- agent build --docker ----------------------------------------------------------------
    def build_image(self, build: ImageBuild, plane: Any, sink: LogSink) -> str:
        from clearml_core_runner_docker.build import build_image

        return build_image(self, build, plane, sink)


def ensure_image(client: Any, reference: str, pull: str, platform: str | None, sink: LogSink) -> str:
    """The id of ``reference`` on this machine, pulled first when ``pull`` asks (``always``) or
    the image is missing (``missing``); ``never`` only looks."""
    present = image_id(client, reference)
    if present is not None and pull != "always":
        return present
    if pull == "never":
        raise ExecutionError(
            f"the image {reference} is not on this machine (--pull never): pull or build it here first"
        )
    sink.write("agent", f"clearml-core: pulling the image {reference}")
    try:
        pull_image(client, reference, platform, sink)
    except api_errors() as error:
        reason = short_error(error)
        if present is not None:
            sink.write(
                "agent",
                f"clearml-core: pulling {reference} failed ({reason}); using the image this machine has",
            )
            return present
        raise ExecutionError(
            f"the image {reference} is not on this machine and pulling it failed: {reason}; pull or build it "
            "on this machine (docker pull), or check its name"
        ) from None
    found = image_id(client, reference)
    if found is None:
        raise ExecutionError(f"the image {reference} was pulled but the engine does not list it")
    return found


def pull_image(client: Any, reference: str, platform: str | None, sink: LogSink) -> None:
    from docker.errors import APIError
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(reference)
    last = ""
    for event in client.api.pull(
        repository, tag=tag or "latest", stream=True, decode=True, platform=platform
    ):
        if "error" in event:
            raise APIError(str(event["error"]), explanation=str(event["error"]))
        status = str(event.get("status", ""))
        if status and status != last and "Downloading" not in status and "Extracting" not in status:
            last = status
            sink.write("agent", f"clearml-core: {status} {event.get('id', '')}".rstrip())


__all__ = ["DockerEnvironment", "PreparedImage", "ensure_image"]
