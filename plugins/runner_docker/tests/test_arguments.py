"""Docker arguments: combined as clearml-agent combines them (checked against clearml-agent itself),
read into the engine's API, images chosen in clearml-agent's precedence, published ports moved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clearml_core_runner_docker import arguments, ports
from clearml_core_runner_docker.selection import default_image, select
from clearml_core_runner_docker.translate import ArgumentError, translate

from clearml_core.config import Config
from clearml_core.controlplane import Container, Task


def config(**agent: Any) -> Config:
    defaults = {
        "forbidden_docker_args": ["entrypoint"],
        "protected_docker_extra_args": ["privileged", "security-opt", "network", "ipc"],
        "docker_args_extra_precedes_task": True,
        "hide_docker_command_env_vars": {"enabled": True, "extra_keys": [], "parse_embedded_urls": True},
    }
    return Config({"agent": {**defaults, **agent}}, {}, [])


MERGE_CASES = [
    (
        "extra first, protected --network",
        ["--network", "bridge", "-e", "A=1"],
        ["--network=host", "--ipc=host"],
        {},
    ),
    (
        "task first",
        ["--ipc=private", "-e", "A=1"],
        ["--ipc=host", "-e", "B=2"],
        {"docker_args_extra_precedes_task": False},
    ),
    ("forbidden in both", ["--entrypoint", "/bin/sh", "-e", "A=1"], ["--entrypoint=/x", "--privileged"], {}),
    ("nothing protected", ["--shm-size", "1g"], ["--shm-size", "2g"], {"protected_docker_extra_args": []}),
    (
        "custom forbidden",
        ["--privileged", "-v", "/a:/b"],
        ["--cap-add", "SYS_ADMIN"],
        {"forbidden_docker_args": ["privileged", "cap-add"]},
    ),
]

CLEARML_AGENT_MERGE = """
import json, sys
from clearml_agent.helper.docker_args import DockerArgsSanitizer

class Config(dict):
    def get(self, key, default=None):
        return super().get(key, default)

cases = json.loads(sys.argv[1])
out = []
for task, extra, settings in cases:
    merged, stripped = DockerArgsSanitizer.merge_docker_args(Config(settings), task, extra)
    out.append([merged, stripped])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_merging_matches_clearml_agent(clearml_agent_python: Path) -> None:
    from tests.clearml_side import run_clearml

    cases = []
    ours = []
    for _name, task, extra, settings in MERGE_CASES:
        agent = {
            "forbidden_docker_args": ["entrypoint"],
            "protected_docker_extra_args": ["privileged", "security-opt", "network", "ipc"],
        }
        agent.update(settings)
        cases.append([task, extra, {f"agent.{key}": value for key, value in agent.items()}])
        merged = arguments.merge(config(**settings), task, extra)
        ours.append([merged.tokens, merged.stripped])
    theirs = json.loads(run_clearml(clearml_agent_python, CLEARML_AGENT_MERGE, json.dumps(cases)))
    assert ours == theirs


def test_merging_keeps_clearml_agents_precedence() -> None:
    merged = arguments.merge(config(), ["--network", "bridge", "-e", "A=1"], ["--network=host"])
    assert merged.tokens == ["--network=host", "-e", "A=1"]
    merged = arguments.merge(
        config(docker_args_extra_precedes_task=False), ["--ipc=private"], ["--ipc=host", "-e", "B=2"]
    )
    assert merged.tokens == ["--ipc=private", "-e", "B=2"]
    merged = arguments.merge(config(), ["--entrypoint", "/bin/sh", "-e", "A=1"], [])
    assert merged.tokens == ["-e", "A=1"] and merged.stripped == ["entrypoint"]
    assert "ignoring docker argument(s) --entrypoint" in merged.warning()


def test_filters_keep_only_the_switches_they_match() -> None:
    patterns = arguments.filter_patterns(config(docker_args_filters=["^-e$", "^--shm-size"]))
    tokens = ["-e", "A=1", "--privileged", "--shm-size=1g", "--env=B=2", "-v", "/a:/b"]
    assert arguments.filtered(tokens, patterns) == ["-e", "A=1", "--shm-size=1g"]


def test_filters_from_the_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(arguments.FILTERS_VARIABLE, "'^--ipc'")
    patterns = arguments.filter_patterns(config(docker_args_filters=["^-e$"]))
    assert arguments.filtered(["-e", "A=1", "--ipc=host"], patterns) == ["--ipc=host"]


def test_host_variables_expand_in_env_values_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_VALUE", "here")
    tokens = ["-e", "A=$HOST_VALUE", "--label", "x=$HOST_VALUE", "--env", "B=${HOST_VALUE}-${NOT_SET}"]
    assert arguments.expand_environment(tokens) == [
        "-e",
        "A=here",
        "--label",
        "x=$HOST_VALUE",
        "--env",
        "B=here-${NOT_SET}",
    ]
    task_only = arguments.combined(config(), ["-e", "A=$HOST_VALUE"])
    assert task_only.tokens == ["-e", "A=$HOST_VALUE"]  # docker_allow_host_environ is off
    allowed = arguments.combined(
        config(docker_allow_host_environ=True, extra_docker_arguments=["-e", "X=$HOST_VALUE"]),
        ["-e", "A=$HOST_VALUE"],
    )
    assert allowed.tokens == ["-e", "X=here", "-e", "A=here"]


def test_what_the_log_shows_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = [
        "-e",
        "AWS_SECRET_ACCESS_KEY=abc",
        "-e",
        "MINE=visible",
        "-e",
        "MY_PASSWORD=p",
        "--env=SPECIAL=s",
        "-e",
        "URL=https://u:pw@host/x",
        "https://u:pw2@host/y",
    ]
    shown = arguments.sanitized(
        config(
            hide_docker_command_env_vars={
                "enabled": True,
                "extra_keys": ["SPECIAL"],
                "parse_embedded_urls": True,
            }
        ),
        tokens,
    )
    assert shown == [
        "-e",
        "AWS_SECRET_ACCESS_KEY=********",
        "-e",
        "MINE=visible",
        "-e",
        "MY_PASSWORD=********",
        "--env=SPECIAL=********",
        "-e",
        "URL=https://u:********@host/x",
        "https://u:********@host/y",
    ]
    off = arguments.sanitized(
        config(
            hide_docker_command_env_vars={
                "enabled": False,
                "extra_keys": ["SPECIAL"],
                "parse_embedded_urls": True,
            }
        ),
        tokens,
    )
    assert (
        "--env=SPECIAL=s" in off and "-e" in off and "MY_PASSWORD=********" in off
    )  # secret-looking names stay hidden
    monkeypatch.setenv(arguments.HIDE_ENV_VARIABLE, "MINE")
    assert "MINE=********" in arguments.sanitized(config(), tokens)


def test_switches_become_the_engines_fields(tmp_path: Path) -> None:
    env_file = tmp_path / "vars"
    env_file.write_text("# comment\nFROM_FILE=1\n")
    options = translate(
        [
            "--ipc=host",
            "--shm-size",
            "1g",
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "-e",
            "A=1",
            "--env-file",
            str(env_file),
            "-v",
            f"{tmp_path}/data:/data:ro",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:9000:90/udp",
            "--gpus",
            "device=0,1",
            "--ulimit",
            "nofile=1024:2048",
            "--cap-add",
            "SYS_PTRACE",
            "--privileged",
            "-it",
            "--rm",
            "--label",
            "a=b",
            "--add-host",
            "db:10.0.0.1",
            "--pull",
            "never",
            "--restart",
            "always",
        ]
    )
    assert options.create["ipc_mode"] == "host" and options.create["shm_size"] == "1g"
    assert options.create["mem_limit"] == "512m" and options.create["nano_cpus"] == 1_500_000_000
    assert options.create["cap_add"] == ["SYS_PTRACE"] and options.create["privileged"] is True
    assert options.create["extra_hosts"] == {"db": "10.0.0.1"}
    assert options.environment == {"A": "1", "FROM_FILE": "1"}
    assert options.binds == [f"{tmp_path}/data:/data:ro"] and (tmp_path / "data").is_dir()
    assert options.ports == {"80/tcp": 8080, "90/udp": ("127.0.0.1", 9000)}
    assert options.gpus == "device=0,1" and options.labels == {"a": "b"} and options.pull == "never"
    assert options.notes == ["--restart: a task's container is removed when the task ends"]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["--frobnicate"], "the docker argument --frobnicate is not one clearml-core passes to the engine"),
        (["--memory", "lots"], "--memory 'lots' is not a size"),
        (["ubuntu"], "the docker argument 'ubuntu' is not a switch"),
        (["-e"], "the docker argument -e needs a value"),
        (["--pull", "sometimes"], "--pull 'sometimes': use always, missing or never"),
    ],
)
def test_arguments_that_cannot_be_passed_say_so(tokens: list[str], message: str) -> None:
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        translate(tokens)


def test_the_image_in_clearml_agents_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = config(default_docker={"image": "conf:1", "arguments": ["--ipc=host"]})
    assert default_image(conf) == default_image(conf, None, ())
    assert (default_image(conf).image, default_image(conf).arguments) == ("conf:1", ("--ipc=host",))
    monkeypatch.setenv("CLEARML_DOCKER_IMAGE", "env:1 -e A=1")
    assert (default_image(conf).image, default_image(conf).arguments) == ("env:1", ("-e", "A=1"))
    assert default_image(conf, "flag:1").arguments == ("--ipc=host",)  # an image alone: the configured ones
    flag = default_image(conf, "flag:1 --shm-size=1g", ["-e", "B=2"])
    assert (flag.image, flag.arguments) == ("flag:1", ("--shm-size=1g", "-e", "B=2"))

    own = Task(container=Container(image="task:1", arguments=["-e", "T=1"], setup_script="echo hi"))
    chosen = select(own, flag, conf)
    assert (chosen.image, chosen.arguments, chosen.setup_script, chosen.default) == (
        "task:1",
        ("-e", "T=1"),
        "echo hi",
        False,
    )
    overridden = select(own, flag, config(disable_task_docker_override=True))
    assert (overridden.image, overridden.arguments, overridden.setup_script) == (
        "flag:1",
        flag.arguments,
        "echo hi",
    )
    assert select(Task(), flag, conf).image == "flag:1"


def test_taken_ports_move_into_the_allowed_range() -> None:
    moved = ports.remap({"80/tcp": 8080, "443/tcp": 8443, "53/udp": 5353}, (9000, 9010), used={8443, 9000})
    assert moved == {"80/tcp": 9001, "443/tcp": 9002, "53/udp": 5353}  # 8080 is outside the range
    assert ports.mapping(moved) == "9001:80,9002:443,5353:53"
    assert ports.remap({"80/tcp": 8080}, None, used=set()) == {"80/tcp": 8080}
    assert ports.allowed_range([10000, 9000]) == (9000, 10000)
