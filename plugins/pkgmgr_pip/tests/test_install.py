"""Real installs with uv and pip: every package_manager setting, torch variants, uv.lock, failures.

Packages are tiny wheels built by the tests and served from local indexes (``file://`` or HTTP on
127.0.0.1); one test installs two small packages from the default index (PyPI).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clearml_core_pkgmgr_pip.tools import find_uv

from clearml_core.controlplane import Requirements, Task
from clearml_core.environments import BuildFailed, BuildLog
from clearml_core.environments.builder import EnvironmentBuilder, PreparedEnvironment
from clearml_core.testing.packages import make_index, make_wheel, offline
from tests.environments.conftest import ConfigFactory
from tests.environments.support import serving

INSTALLERS = ["uv", "pip"]


class Built:
    def __init__(self, prepared: PreparedEnvironment, lines: list[str]) -> None:
        self.prepared = prepared
        self.lines = lines
        assert prepared.env is not None
        self.env = prepared.env

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def versions(self) -> dict[str, str]:
        return dict(line.split("==", 1) for line in self.prepared.frozen if "==" in line)

    def python(self, code: str) -> str:
        done = subprocess.run([str(self.env.python), "-c", code], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def build(
    config, lines: list[str], target: Path, *, code: Path | None = None, gpus: list[str] | None = None
) -> Built:  # type: ignore[no-untyped-def]
    out: list[str] = []
    builder = EnvironmentBuilder(config, cache=None)
    context = builder.context(code_dir=code, working_dir=code, gpus=gpus)
    log = BuildLog(lambda stream, line: out.append(line))
    try:
        prepared = builder.build_at(Task(requirements=Requirements(pip=lines)), context, log, target)
    except BuildFailed as failed:
        failed.lines = out  # type: ignore[attr-defined]
        raise
    return Built(prepared, out)


def installer(config_factory: ConfigFactory, name: str, **settings: object) -> object:
    return config_factory({"agent.package_manager.installer": name, **settings})


def test_requirements_install_from_the_index(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    built = build(installer(env_config, "uv"), ["alpha"], tmp_path / "env")
    versions = built.versions()
    assert (versions["alpha"], versions["tinypkg"]) == ("1.0", "2.0")  # the best version of the dependency
    assert built.python("import alpha, tinypkg; print(tinypkg.VERSION)") == "2.0"
    assert built.prepared.summary["installer"] == "uv"
    assert (built.env.path / "clearml-build" / "01-requirements.txt").read_text().strip() == "alpha"


def test_pip_version_puts_pip_at_that_version_with_uv(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    bundled = next(offline_index.glob("pip/pip-*.whl")).name.split("-")[1]
    config = installer(
        env_config, "uv", **{"agent.package_manager.pip_version": [f"=={bundled} ; python_version >= '3'"]}
    )
    built = build(config, ["beta"], tmp_path / "env")
    assert built.versions()["pip"] == bundled
    assert built.python("import pip; print(pip.__version__)") == bundled
    impossible = installer(env_config, "uv", **{"agent.package_manager.pip_version": ["<9"]})
    with pytest.raises(BuildFailed, match=r"^installing .* failed: .*pip<9"):
        build(impossible, ["beta"], tmp_path / "env2")


def test_the_pip_installer_end_to_end(env_config: ConfigFactory, offline_index: Path, tmp_path: Path) -> None:
    """pip itself installs: pip_version, the legacy resolver, an extra index with a password, the download cache."""
    bundled = next(offline_index.glob("pip/pip-*.whl")).name.split("-")[1]
    extra = make_index(tmp_path / "extra", [make_wheel(tmp_path / "w", "gamma", "3.0")])
    downloads = tmp_path / "downloads"
    with serving(extra) as server:
        url = server.url.replace("http://", "http://agent:s3cr3t-pass@")
        config = installer(
            env_config,
            "pip",
            **{
                "agent.package_manager.pip_version": [f"=={bundled}"],
                "agent.package_manager.pip_legacy_resolver": [">=20.3"],
                "agent.package_manager.extra_index_url": [url],
                "agent.pip_download_cache.path": str(downloads),
            },
        )
        built = build(config, ["alpha", "gamma"], tmp_path / "env")
        assert server.downloads >= 1
    versions = built.versions()
    assert (versions["alpha"], versions["tinypkg"], versions["gamma"], versions["pip"]) == (
        "1.0",
        "2.0",
        "3.0",
        bundled,
    )
    assert built.prepared.summary["installer"] == "pip"
    commands = [line for line in built.lines if line.startswith("clearml-core: $ ")]
    assert all(" -m pip install " in line or " -m venv " in line for line in commands)
    assert any("--use-deprecated=legacy-resolver" in line for line in commands)
    assert "s3cr3t-pass" not in built.text and not any("127.0.0.1" in line for line in commands)
    # pip caches no answer to a request with credentials: that the cache is the configured one shows in its flags
    assert all(f"--cache-dir {downloads / 'pip'}" in line for line in commands if " -m pip install " in line)


def test_without_pip_version_a_uv_environment_has_no_pip(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    built = build(installer(env_config, "uv"), ["beta"], tmp_path / "env")
    assert set(built.versions()) == {"beta"}


def test_priority_and_post_phases_and_optional_failures(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    name = "uv"
    config = installer(
        env_config,
        name,
        **{
            "agent.package_manager.priority_packages": ["tinypkg"],
            "agent.package_manager.priority_optional_packages": ["no-such-package-a"],
            "agent.package_manager.post_packages": ["alpha"],
            "agent.package_manager.post_optional_packages": ["no-such-package-b"],
        },
    )
    built = build(
        config, ["alpha", "no-such-package-b", "beta", "tinypkg==1.0", "no-such-package-a"], tmp_path / "env"
    )
    versions = built.versions()
    assert (versions["tinypkg"], versions["alpha"], versions["beta"]) == ("1.0", "1.0", "1.0")
    assert "no-such-package-a" not in versions and "no-such-package-b" not in versions
    files = sorted(p.name for p in (built.env.path / "clearml-build").glob("*.txt"))
    assert files == [
        "01-priority.txt",
        "02-priority-optional.txt",
        "03-requirements.txt",
        "04-post.txt",
        "05-post-optional.txt",
    ]
    skipped = [line for line in built.lines if "did not install; going on without it" in line]
    assert len(skipped) == 2 and "no-such-package-a" in skipped[0] and "no-such-package-b" in skipped[1]
    # alpha (post) found tinypkg 1.0 (priority) installed and kept it
    required = installer(env_config, name, **{"agent.package_manager.post_packages": ["no-such-package-c"]})
    with pytest.raises(BuildFailed, match=r"^installing the post packages failed: .*no-such-package-c"):
        build(required, ["beta", "no-such-package-c"], tmp_path / "env2")


def test_extra_index_url_is_used_and_its_password_never_shown(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    name = "uv"
    extra = make_index(tmp_path / "extra", [make_wheel(tmp_path / "w", "gamma", "3.0")])
    with serving(extra) as server:
        with pytest.raises(BuildFailed, match="gamma"):
            build(installer(env_config, name), ["gamma"], tmp_path / "env0")
        url = server.url.replace("http://", "http://agent:s3cr3t-pass@")
        config = installer(env_config, name, **{"agent.package_manager.extra_index_url": [url]})
        built = build(config, ["gamma"], tmp_path / "env")
        assert built.versions()["gamma"] == "3.0" and server.downloads >= 1
    assert "s3cr3t-pass" not in built.text
    commands = [line for line in built.lines if line.startswith("clearml-core: $ ")]
    assert commands and not any(
        "127.0.0.1" in line for line in commands
    )  # indexes go through the environment


def test_force_upgrade_with_pip(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tinypkg 1.0 visible to pip before the install (as a system package would be)
    outside = tmp_path / "outside"
    uv = find_uv()
    assert uv is not None
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--target",
            str(outside),
            "--python",
            sys.executable,
            "tinypkg==1.0",
        ],
        check=True,
    )
    monkeypatch.setenv("PYTHONPATH", str(outside))
    kept = build(installer(env_config, "pip"), ["tinypkg"], tmp_path / "env")
    assert "tinypkg" not in kept.versions() and "Requirement already satisfied: tinypkg" in kept.text
    config = installer(env_config, "pip", **{"agent.package_manager.force_upgrade": True})
    upgraded = build(config, ["tinypkg"], tmp_path / "env2")
    assert upgraded.versions()["tinypkg"] == "2.0"
    uv_upgrade = build(
        installer(env_config, "uv", **{"agent.package_manager.force_upgrade": True}),
        ["tinypkg"],
        tmp_path / "env3",
    )
    assert any(" pip install " in line and " --upgrade" in line for line in uv_upgrade.lines)


@pytest.mark.parametrize("manager", ["pip", "uv"])
def test_system_site_packages(
    manager: str, env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    probe = "import sys; print(any(p.startswith(sys.base_prefix) and p.endswith('site-packages') for p in sys.path))"
    config = env_config(
        {"agent.package_manager.type": manager, "agent.package_manager.system_site_packages": True}
    )
    shared = build(config, ["beta"], tmp_path / "env")
    assert shared.python(probe) == "True"
    assert "include-system-site-packages = true" in (shared.env.path / "pyvenv.cfg").read_text()
    # type: pip keeps pip's meaning (system packages count as installed), so pip installs
    assert shared.prepared.summary["installer"] == ("pip" if manager == "pip" else "uv")
    if manager == "uv":
        isolated = build(env_config({"agent.package_manager.type": manager}), ["beta"], tmp_path / "env2")
        assert isolated.python(probe) == "False"


def test_the_download_cache_is_used_or_turned_off(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "downloads"
    build(
        installer(env_config, "uv", **{"agent.pip_download_cache.path": str(cache)}),
        ["beta"],
        tmp_path / "env",
    )
    assert any((cache / "uv").rglob("*")), "uv wrote nothing to its download cache"
    off = installer(
        env_config,
        "uv",
        **{
            "agent.pip_download_cache.path": str(tmp_path / "unused"),
            "agent.pip_download_cache.enabled": False,
        },
    )
    built = build(off, ["beta"], tmp_path / "env2")
    assert not (tmp_path / "unused").exists()
    assert any(" pip install " in line and "--no-cache" in line for line in built.lines)


@pytest.fixture
def torch_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PyTorch's layout, locally: <root>/<variant>/torch/torch-2.3.0+<variant>; the default index has plain 2.3.0."""
    root = tmp_path / "whl"
    for variant in ("cpu", "cu118", "cu121"):
        make_index(
            root / variant,
            [make_wheel(tmp_path / "w" / variant, "torch", f"2.3.0+{variant}", module="torch")],
        )
    default = make_index(
        tmp_path / "default", [make_wheel(tmp_path / "w" / "plain", "torch", "2.3.0", module="torch")]
    )
    offline(monkeypatch, default)
    return root


@pytest.mark.parametrize("manager", ["pip", "uv"])
@pytest.mark.parametrize(("cuda", "variant"), [("12.2", "cu121"), ("11.8", "cu118"), (None, "cpu")])
def test_torch_comes_from_the_index_of_the_machines_cuda(
    manager: str,
    cuda: str | None,
    variant: str,
    env_config: ConfigFactory,
    torch_indexes: Path,
    tmp_path: Path,
) -> None:
    settings = {
        "agent.package_manager.type": manager,
        "agent.package_manager.pytorch_index_url": torch_indexes.as_uri(),
        "agent.cuda_version": cuda if cuda is not None else 0,
    }
    built = build(env_config(settings), ["torch==2.3.0"], tmp_path / "env")
    assert built.versions()["torch"] == f"2.3.0+{variant}"
    assert built.prepared.summary["torch_index"] == f"{torch_indexes.as_uri()}/{variant}"


def test_a_repository_with_uv_lock_is_synced_without_the_project(
    env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0.1"\nrequires-python = ">=3.8"\ndependencies = ["tinypkg==1.0", "beta"]\n'
    )
    uv = find_uv()
    assert uv is not None
    subprocess.run([uv, "lock", "--quiet"], cwd=project, check=True, env={**os.environ, "UV_NO_CONFIG": "1"})
    config = env_config({"agent.package_manager.type": "uv"})
    built = build(config, [], tmp_path / "env", code=project)
    assert built.versions() == {"tinypkg": "1.0", "beta": "1.0"}  # not demo itself: it runs from the checkout
    assert built.prepared.summary["lock"] == "uv.lock" and any(
        " sync --locked " in line for line in built.lines
    )
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace('"beta"', '"alpha"')
    )
    with pytest.raises(
        BuildFailed, match=r"uv\.lock failed: .*(lockfile|lock file).* Run `uv lock` in the project"
    ):
        build(config, [], tmp_path / "env2", code=project)
    off = env_config(
        {"agent.package_manager.type": "uv", "agent.package_manager.uv_sync_locked_if_lock_file": False}
    )
    locked = (project / "uv.lock").read_text()
    as_it_is = build(off, ["alpha"], tmp_path / "env3", code=project)
    assert as_it_is.versions() == {"tinypkg": "1.0", "beta": "1.0"}  # the lock's, not pyproject's
    assert any(" sync --frozen " in line for line in as_it_is.lines)
    assert (project / "uv.lock").read_text() == locked  # never locked again


def uv_path_project(folder: Path, *, editable: bool) -> Path:
    """A uv project whose lock installs ``pathdep`` from its folder ``libs/pathdep`` (built by flit_core
    from the default index)."""
    package = folder / "libs" / "pathdep"
    (package / "pathdep").mkdir(parents=True)
    (package / "pathdep" / "__init__.py").write_text("VALUE = 'first'\n")
    (package / "pyproject.toml").write_text(
        '[project]\nname = "pathdep"\nversion = "0.1"\ndescription = "x"\n\n'
        '[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n'
    )
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0.1"\nrequires-python = ">=3.8"\ndependencies = ["pathdep"]\n\n'
        f'[tool.uv.sources]\npathdep = {{ path = "libs/pathdep", editable = {str(editable).lower()} }}\n'
    )
    uv = find_uv()
    assert uv is not None
    subprocess.run([uv, "lock", "--quiet"], cwd=folder, check=True)
    return folder


def prepare_in_cache(config, code: Path, tmp_path: Path) -> PreparedEnvironment:  # type: ignore[no-untyped-def]
    builder = EnvironmentBuilder(config)
    context = builder.context(code_dir=code, working_dir=code)
    prepared = builder.prepare(Task(), context, BuildLog(lambda stream, line: None), tmp_path / "private")
    prepared.release()
    return prepared


def test_a_folder_that_uv_lock_installs_is_keyed_by_its_content(
    env_config: ConfigFactory, tmp_path: Path
) -> None:
    import shutil

    config = env_config({"agent.package_manager.type": "uv"})
    project = uv_path_project(tmp_path / "project", editable=False)
    first = prepare_in_cache(config, shutil.copytree(project, tmp_path / "one"), tmp_path)
    same = prepare_in_cache(config, shutil.copytree(project, tmp_path / "two"), tmp_path)
    assert (first.source, same.source) == ("cache-build", "cache-hit")  # a fresh copy, the same files
    changed = shutil.copytree(project, tmp_path / "three")
    (changed / "libs" / "pathdep" / "pathdep" / "__init__.py").write_text("VALUE = 'changed'\n")
    again = prepare_in_cache(config, changed, tmp_path)
    assert again.source == "cache-build" and again.key != first.key
    value = subprocess.run(
        [again.python, "-c", "import pathdep; print(pathdep.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert value.stdout.strip() == "changed"


def test_an_editable_folder_of_uv_lock_gets_an_environment_of_its_own(
    env_config: ConfigFactory, tmp_path: Path
) -> None:
    config = env_config({"agent.package_manager.type": "uv"})
    project = uv_path_project(tmp_path / "project", editable=True)
    builder = EnvironmentBuilder(config)
    plan = builder.plan(Task(), builder.context(code_dir=project, working_dir=project))
    assert "uv.lock installs libs/pathdep in editable mode" in plan.uncacheable_reason
    prepared = prepare_in_cache(config, project, tmp_path)
    assert prepared.source == "private"


@pytest.mark.parametrize("name", INSTALLERS)
def test_a_requirement_that_does_not_exist_fails_with_the_installers_reason(
    name: str, env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    config = installer(env_config, name, **{"agent.pip_download_cache.enabled": False})
    with pytest.raises(BuildFailed) as failed:
        build(config, ["beta", "no-such-package-xyz==1.0"], tmp_path / "env")
    reason = str(failed.value)
    assert (
        reason.startswith("installing the task's requirements failed: ") and "no-such-package-xyz" in reason
    )
    assert "\n" not in reason
    lines = failed.value.lines  # type: ignore[attr-defined]
    assert any(("--no-cache" if name == "uv" else "--no-cache-dir") in line for line in lines)


def test_an_unreachable_index_fails_with_the_installers_reason(
    env_config: ConfigFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "uv"
    from tests.environments.support import free_port

    offline(monkeypatch, f"http://127.0.0.1:{free_port()}/simple")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    with pytest.raises(BuildFailed) as failed:
        build(installer(env_config, name), ["beta"], tmp_path / "env")
    reason = str(failed.value)
    assert reason.startswith("installing the task's requirements failed: ")
    assert any(
        word in reason.lower() for word in ("connect", "refused", "no matching distribution", "not find")
    )


def test_two_small_packages_from_the_default_index(
    env_config: ConfigFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default settings (type pip, pip_version for this Python) against the real default index."""
    offline(monkeypatch, None)
    config = env_config(
        {
            "agent.package_manager.pip_version": [
                "<22.3 ; python_version >= '3.10' and python_version <= '3.11'",
                ">=23,<26 ; python_version >= '3.12'",
            ]
        }
    )
    built = build(config, ["six==1.17.0", "idna"], tmp_path / "env")
    versions = built.versions()
    assert versions["six"] == "1.17.0" and "idna" in versions and "pip" in versions
    assert built.python("import six, idna; print(six.__version__)") == "1.17.0"


def test_torch_with_the_pip_installer(env_config: ConfigFactory, torch_indexes: Path, tmp_path: Path) -> None:
    settings = {
        "agent.package_manager.installer": "pip",
        "agent.package_manager.pytorch_index_url": torch_indexes.as_uri(),
        "agent.cuda_version": "12.3",
    }
    built = build(env_config(settings), ["torch==2.3.0"], tmp_path / "env")
    assert (
        built.versions()["torch"] == "2.3.0+cu121"
    )  # pip prefers the local version over the default index's


@pytest.mark.parametrize("manager", ["pip", "uv"])
def test_direct_resolution_finds_an_old_torch_in_an_older_cuda_variant(
    manager: str, env_config: ConfigFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch 1.13 has no cu121 build: ``pip`` resolution falls back to the default index's plain
    build, ``direct`` pins the cu117 wheel (the newest variant that has it)."""
    root = tmp_path / "whl"
    wheels = {
        "cu121": ["2.3.0+cu121"],
        "cu117": ["1.13.0+cu117", "2.0.0+cu117"],
        "cpu": ["1.13.0+cpu", "2.3.0+cpu"],
    }
    for variant, versions in wheels.items():
        make_index(
            root / variant,
            [make_wheel(tmp_path / "w" / variant, "torch", version, module="torch") for version in versions],
        )
    default = make_index(
        tmp_path / "default",
        [
            make_wheel(tmp_path / "w" / "plain", "torch", version, module="torch")
            for version in ("1.13.0", "2.3.0")
        ],
    )
    offline(monkeypatch, default)
    settings = {
        "agent.package_manager.type": manager,
        "agent.package_manager.pytorch_index_url": root.as_uri(),
        "agent.cuda_version": "12.2",
    }
    if manager == "pip":
        assert (
            build(env_config(settings), ["torch==1.13.0"], tmp_path / "env-pip").versions()["torch"]
            == "1.13.0"
        )
    else:  # uv takes torch from the first index that has the project: cu121, without 1.13
        with pytest.raises(BuildFailed, match="torch"):
            build(env_config(settings), ["torch==1.13.0"], tmp_path / "env-pip")
    direct = env_config({**settings, "agent.package_manager.pytorch_resolve": "direct"})
    built = build(direct, ["torch==1.13.0"], tmp_path / "env-direct")
    assert built.python("import torch; print(torch.VERSION)") == "1.13.0+cu117"
    wheel = built.prepared.summary["torch_wheels"]["torch"]
    assert wheel.startswith(f"{root.as_uri()}/cu117/torch/torch-1.13.0") and "#sha256=" in wheel
    assert "torch_index" not in built.prepared.summary
    assert [line for line in built.prepared.frozen if line.startswith("torch")] == [f"torch @ {wheel}"]
    # what no variant has is left to the extra index, as pip resolution does
    builder = EnvironmentBuilder(direct, cache=None)
    plan = builder.plan(
        Task(requirements=Requirements(pip=["torch==2.0.0", "torchaudio==9.9"])), builder.context()
    )
    assert plan.requirements.main[0].startswith(f"torch @ {root.as_uri()}/cu117/torch/torch-2.0.0")
    assert plan.requirements.main[1] == "torchaudio==9.9"
    assert plan.requirements.torch_index == f"{root.as_uri()}/cu121"
