"""Where a conda environment's packages come from: the task's environment.yml or conda list, the
code's environment.yml, the task's pip lines; the pip side in pip mode's phases; bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.environments import BuildFailed, RequirementsError
from plugins.pkgmgr_conda.tests.conftest import CondaConfig
from plugins.pkgmgr_conda.tests.support import conda_task, prepare

PROBE = "import sys, tinypkg, beta; print(tinypkg.VERSION, beta.VERSION, sys.prefix)"


def test_an_environment_yml_with_a_pip_section(
    conda_config: CondaConfig, conda_channel: Path, offline_index: Path, tmp_path: Path
) -> None:
    task = conda_task("name: demo\ndependencies:\n  - tinypkg=1.0\n  - pip:\n    - beta\n")
    built = prepare(conda_config(), task, tmp_path / "p")
    names = built.names()
    assert names["tinypkg"] == f"tinypkg ==1.0 0[channel={conda_channel.as_uri()}]"
    assert names["beta"] == "beta==1.0"  # from the pip index, installed into the conda prefix
    assert names["python"].startswith("python ==") and names["pip"].startswith("pip ==")  # conda's pip
    assert built.python(PROBE) == f"1.0 1.0 {built.env.path}"
    assert built.prepared.summary["source"] == "task" and built.prepared.summary["pip_requirements"] == 1
    assert any("installing the task's requirements with uv" in line for line in built.lines)


def test_clearmls_conda_list_takes_the_named_packages_from_conda_the_rest_from_pip(
    conda_config: CondaConfig, offline_index: Path, tmp_path: Path
) -> None:
    # what ClearML's SDK records: conda packages as "name == version", the pip lines beside them
    task = conda_task("# Python 3.11.7\ntinypkg == 1.0\n", pip=["tinypkg==1.0", "beta"])
    built = prepare(conda_config(), task, tmp_path / "p")
    assert built.names()["tinypkg"].startswith("tinypkg ==1.0 0[channel=")
    assert built.names()["beta"] == "beta==1.0"
    assert built.python(PROBE).startswith("1.0 1.0 ")


def test_pip_requirements_alone_get_a_conda_python_of_the_agents_version(
    conda_config: CondaConfig, offline_index: Path, tmp_path: Path
) -> None:
    built = prepare(conda_config(), conda_task(pip=["beta"]), tmp_path / "p")
    assert set(built.names()) == {"python", "pip", "beta"}
    assert built.python("import beta, sys; print(sys.prefix)") == str(built.env.path)


def test_the_environment_yml_of_the_code(
    conda_config: CondaConfig, conda_channel: Path, second_channel: Path, offline_index: Path, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "environment.yml").write_text(
        f"channels:\n  - {second_channel}\n  - nodefaults\ndependencies:\n  - tinypkg\n  - pip:\n    - -r reqs.txt\n"
    )
    (code / "reqs.txt").write_text("beta\n")  # relative to the environment.yml, as conda reads it
    # nodefaults drops the configured "defaults" (which could not be reached here)
    config = conda_config({"agent.package_manager.conda_channels": [str(conda_channel), "defaults"]})
    built = prepare(config, conda_task(), tmp_path / "p", code=code)
    assert built.names()["tinypkg"].startswith("tinypkg ==3.0 0")
    assert built.names()["beta"] == "beta==1.0"
    assert built.prepared.summary["source"] == "environment.yml"
    assert built.prepared.summary["channels"] == [second_channel.as_uri(), conda_channel.as_uri()]


def test_pip_phases_follow_pip_mode(conda_config: CondaConfig, offline_index: Path, tmp_path: Path) -> None:
    config = conda_config(
        {
            "agent.package_manager.priority_packages": ["beta"],
            "agent.package_manager.post_optional_packages": ["no-such-package-b"],
        }
    )
    built = prepare(
        config,
        conda_task("dependencies: [tinypkg]", pip=["alpha", "no-such-package-b", "beta"]),
        tmp_path / "p",
    )
    phases = sorted(p.name for p in (built.env.path / "clearml-build").glob("*.txt"))
    assert phases == ["01-priority.txt", "02-requirements.txt", "03-post-optional.txt"]
    assert (built.env.path / "clearml-build" / "01-priority.txt").read_text().strip() == "beta"
    assert built.names()["alpha"] == "alpha==1.0"  # pip's alpha: the conda side does not name it
    assert "no-such-package-b" not in built.names()


def test_variables_of_an_environment_yml_are_set_when_it_is_active(
    conda_config: CondaConfig, tmp_path: Path
) -> None:
    task = conda_task("dependencies: [tinypkg]\nvariables:\n  MODEL_HOME: /models\n")
    built = prepare(conda_config(), task, tmp_path / "p")
    environ = built.prepared.environ
    assert environ["MODEL_HOME"] == "/models"
    assert environ["CONDA_PREFIX"] == str(built.env.path) and environ["VIRTUAL_ENV"] == ""
    assert environ["PATH"].startswith(f"{built.env.path / 'bin'}:")


def test_an_activate_script_of_a_package_is_run(conda_config: CondaConfig, tmp_path: Path) -> None:
    from clearml_core_pkgmgr_conda.testing import index_channel, make_package

    channel = tmp_path / "channel"
    make_package(
        channel,
        "toolkit",
        "1.0",
        files={"etc/conda/activate.d/toolkit.sh": b'export TOOLKIT_HOME="$CONDA_PREFIX/toolkit"\n'},
    )
    index_channel(channel)
    config = conda_config({"agent.package_manager.conda_channels": [str(channel), *_channels(conda_config)]})
    built = prepare(config, conda_task("dependencies: [toolkit]"), tmp_path / "p")
    assert built.prepared.environ["TOOLKIT_HOME"] == f"{built.env.path}/toolkit"


def _channels(conda_config: CondaConfig) -> list[str]:
    return list(conda_config().get_list("agent.package_manager.conda_channels"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ndependencies: [alpha\n", r"^the task's conda requirements: not valid YAML \(line 2\): "),
        ("dependencies: 3\n", r"'dependencies' must be a list of conda packages"),
        ("dependencies: [{conda: [x]}]\n", r"is neither a conda package nor a 'pip:' section"),
        ("channels: [1]\ndependencies: [alpha]\n", r"'channels' must be a list of channel names or URLs"),
        ("dependencies:\n  - pip: beta\n", r"the 'pip' section must be a list of requirement lines"),
    ],
)
def test_a_broken_environment_yml_is_one_clear_reason(
    conda_config: CondaConfig, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(RequirementsError, match=message) as failed:
        prepare(conda_config(), conda_task(text), tmp_path / "p")
    assert "\n" not in str(failed.value)


def test_a_failing_pip_phase_fails_the_build_and_caches_nothing(
    conda_config: CondaConfig, offline_index: Path, tmp_path: Path
) -> None:
    from clearml_core.environments.cache import EnvironmentCache

    config = conda_config()
    task = conda_task("dependencies:\n  - tinypkg\n  - pip: [no-such-package-xyz]\n")
    with pytest.raises(BuildFailed) as failed:
        prepare(config, task, tmp_path / "p")
    assert str(failed.value).startswith("installing the task's requirements failed: ")
    assert "no-such-package-xyz" in str(failed.value) and "\n" not in str(failed.value)
    cache = EnvironmentCache.from_config(config)
    assert cache is not None and cache.entries() == []
