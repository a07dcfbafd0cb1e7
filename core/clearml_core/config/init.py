"""Writing a new clearml.conf for ``config init``."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from clearml_core.errors import UserError


@dataclass(frozen=True)
class ConfigAnswers:
    control_plane: str = "sqlite:///~/.clearml-core/state.db"
    git_user: str = ""
    git_pass: str = ""
    extra_index_url: str = ""
    output_uri: str = ""


def render(answers: ConfigAnswers) -> str:
    quote = json.dumps
    lines = [
        "# clearml.conf written by `clearml-core config init`; the full reference is in docs/configuration.md",
        "sdk {",
        "    development {",
        f"        default_output_uri: {quote(answers.output_uri)}",
        "    }",
        "}",
        "agent {",
        f"    control_plane: {quote(answers.control_plane)}",
        f"    git_user: {quote(answers.git_user)}",
        f"    git_pass: {quote(answers.git_pass)}",
        "    package_manager {",
        f"        extra_index_url: [{quote(answers.extra_index_url)}]"
        if answers.extra_index_url
        else "        extra_index_url: []",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


def write_config(target: Path, answers: ConfigAnswers) -> None:
    """Write atomically, readable by the owner only (it may hold a password); never overwrite."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(render(answers))
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, target)  # fails if the target appeared meanwhile: never overwrite
        except FileExistsError:
            raise UserError(
                f"{target} already exists; edit it, or pass --file to write another one"
            ) from None
    finally:
        os.unlink(temporary)
