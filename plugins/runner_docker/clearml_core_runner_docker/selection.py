"""Which image a task runs in, with which arguments and setup script: clearml-agent's precedence.

The agent's default (what ``--docker IMAGE ARGS`` or the configuration names) is, in order:

1. the flag's image (``--docker "python:3.12 --ipc=host"`` splits into image and arguments) and its
   arguments; an image alone there takes ``agent.default_docker.arguments``;
2. ``CLEARML_DOCKER_IMAGE`` (the image, optionally with arguments after a space);
3. ``agent.default_docker.image`` with ``agent.default_docker.arguments``.

A task that names an image in its container section runs in it with *its own* arguments, unless
``agent.disable_task_docker_override`` is true; then (and for tasks that name none) the default
image and arguments are used. The task's setup shell script runs either way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearml_core_runner_docker.arguments import normalized

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import Task

IMAGE_VARIABLE = "CLEARML_DOCKER_IMAGE"
LEGACY_IMAGE_VARIABLE = "TRAINS_DOCKER_IMAGE"


@dataclass(frozen=True)
class DefaultImage:
    image: str
    arguments: tuple[str, ...]
    from_flag: bool


@dataclass(frozen=True)
class Selection:
    image: str
    arguments: tuple[str, ...]
    setup_script: str
    default: bool
    """True when the task's own image was not used (it names none, or overriding is disabled)."""

    def describe(self) -> str:
        return f"{'default ' if self.default else ''}image {self.image}"


def default_image(
    config: Config, flag_image: str | None = None, flag_args: Sequence[str] = ()
) -> DefaultImage:
    """The agent's default image and arguments (the module docstring's order)."""
    if flag_image:
        words = flag_image.split()
        given = normalized([*words[1:], *flag_args])
        if given:
            return DefaultImage(words[0], tuple(given), True)
        configured = config.get("agent.default_docker.arguments") or []
        return DefaultImage(words[0], tuple(normalized(configured)), True)
    named = (os.environ.get(IMAGE_VARIABLE) or os.environ.get(LEGACY_IMAGE_VARIABLE) or "").strip()
    if named:
        words = named.split()
        if len(words) > 1:
            return DefaultImage(words[0], tuple(normalized(words[1:])), False)
        image = words[0]
    else:
        image = (config.get_str("agent.default_docker.image", "") or "").strip()
    arguments = config.get("agent.default_docker.arguments") or []
    return DefaultImage(image, tuple(normalized(arguments)), False)


def select(task: Task, default: DefaultImage, config: Config, *, force_default: bool = False) -> Selection:
    """The image, arguments and setup script ``task`` runs with (see the module docstring)."""
    container = task.container
    use_default = (
        force_default
        or config.get_bool("agent.disable_task_docker_override", False)
        or not (container.image or "").strip()
    )
    if use_default:
        image, arguments = default.image, default.arguments
    else:
        image, arguments = container.image.strip(), tuple(normalized(container.arguments))
    return Selection(image, arguments, container.setup_script or "", use_default)


__all__ = ["DefaultImage", "Selection", "default_image", "select"]
