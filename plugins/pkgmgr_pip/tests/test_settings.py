"""What the pip and uv managers decide before installing: phases, settings, torch indexes, fingerprints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clearml_core_pkgmgr_pip import torch
from clearml_core_pkgmgr_pip.managers import PipManager, PipRequirements, UvManager, pip_requirement_lines
from clearml_core_pkgmgr_pip.pipconfig import read_index_config
from clearml_core_pkgmgr_pip.tools import find_uv

from clearml_core.controlplane import Requirements, Task
from clearml_core.environments import BuildContext
from clearml_core.environments.builder import EnvironmentBuilder
from clearml_core.environments.cuda import normalize_cuda_version
from clearml_core.environments.python import current_python
from tests.environments.conftest import ConfigFactory


def context(config, cuda: str | None = None, code: Path | None = None, environ=None) -> BuildContext:  # type: ignore[no-untyped-def]
    return BuildContext(
        config=config,
        python=current_python(),
        code_dir=code,
        working_dir=code,
        cuda_version=cuda,
        environ=environ if environ is not None else dict(os.environ),
    )


def task(*lines: str) -> Task:
    return Task(requirements=Requirements(pip=list(lines)))


def test_priority_and_post_packages_are_split_out_in_phases(env_config: ConfigFactory) -> None:
    config = env_config(
        {
            "agent.package_manager.priority_packages": ["Cython", "numpy"],
            "agent.package_manager.priority_optional_packages": ["pygobject"],
            "agent.package_manager.post_packages": ["horovod"],
            "agent.package_manager.post_optional_packages": ["flash_attn"],
        }
    )
    manager = PipManager(config)
    found = manager.requirements(
        task(
            "--extra-index-url https://example.invalid/simple",
            "numpy==1.26.4",
            "pandas",
            "cython>=3",
            "PyGObject",
            "horovod==0.28",
            "flash-attn",
            "requests",
        ),
        context(config),
    )
    assert isinstance(found, PipRequirements)
    assert found.options == ("--extra-index-url https://example.invalid/simple",)
    assert found.priority == ("numpy==1.26.4", "cython>=3")
    assert found.priority_optional == ("PyGObject",)
    assert found.main == ("pandas", "requests")
    assert found.post == ("horovod==0.28",)
    assert found.post_optional == ("flash-attn",)
    # names in the lists that the task does not ask for are not installed (clearml-agent's rule)
    assert "setuptools" not in " ".join(found.priority)


def test_pip_version_entries_become_requirement_lines() -> None:
    assert pip_requirement_lines(["<22.3 ; python_version >= '3.10'", "", "==23.1", "pip>=24"]) == (
        "pip<22.3 ; python_version >= '3.10'",
        "pip",
        "pip==23.1",
        "pip>=24",
    )
    assert pip_requirement_lines("<20.2") == ("pip<20.2",)
    assert pip_requirement_lines(None) == ()


@pytest.mark.parametrize(
    ("cuda", "variant"),
    [
        ("12.2", "cu121"),
        ("12.1", "cu121"),
        ("12.6", "cu126"),
        ("12.9", "cu129"),
        ("11.4", "cu113"),
        ("11.8", "cu118"),
        ("13.0", "cu130"),
        ("9.0", "cpu"),
        (None, "cpu"),
    ],
)
def test_the_torch_variant_is_the_newest_the_cuda_version_runs(cuda: str | None, variant: str) -> None:
    assert torch.pick_variant(cuda) == variant


def test_torch_index_urls_follow_pytorchs_layout() -> None:
    assert torch.index_url("https://download.example/whl/", "cu121") == "https://download.example/whl/cu121"
    assert torch.index_url("https://x/whl", "cpu", nightly=True) == "https://x/whl/nightly/cpu"
    assert torch.pick_variant("12.4", ["cu118", "cu124", "rocm6.1"]) == "cu124"


def test_cuda_versions_are_read_in_every_spelling() -> None:
    assert normalize_cuda_version(12.1) == "12.1"
    assert normalize_cuda_version("12.1.105") == "12.1"
    assert normalize_cuda_version(121) == "12.1"
    assert normalize_cuda_version("cu118") == "11.8"
    assert normalize_cuda_version("92") == "9.2"
    for cpu in (0, "0", "cpu", "none", "", None):
        assert normalize_cuda_version(cpu) is None
    with pytest.raises(ValueError, match="not a CUDA version"):
        normalize_cuda_version("twelve")


def test_torch_gets_the_index_of_the_configured_cuda(
    env_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = "https://wheels.example/whl"
    builder_config = env_config(
        {"agent.package_manager.pytorch_index_url": root, "agent.cuda_version": "12.2"}
    )
    builder = EnvironmentBuilder(builder_config, cache=None)
    plan = builder.plan(task("torch==2.3.0", "numpy"), builder.context())
    assert plan.requirements.torch_index == f"{root}/cu121"
    # CUDA_VERSION reaches agent.cuda_version through the configuration's fixed variables
    monkeypatch.setenv("CUDA_VERSION", "11.8")
    from clearml_core.settings import load_config

    with_env = EnvironmentBuilder(load_config(builder_config.files[0]), cache=None)
    assert with_env.plan(task("torchvision"), with_env.context()).requirements.torch_index == f"{root}/cu118"
    monkeypatch.delenv("CUDA_VERSION")
    cpu = env_config(
        {"agent.package_manager.pytorch_index_url": root, "agent.cpu_only": True, "agent.cuda_version": 12.4}
    )
    cpu_builder = EnvironmentBuilder(cpu, cache=None)
    assert cpu_builder.plan(task("torch"), cpu_builder.context()).requirements.torch_index == f"{root}/cpu"
    assert builder.plan(task("torch"), builder.context(gpus=[])).requirements.torch_index == f"{root}/cpu"
    nightly = env_config(
        {
            "agent.package_manager.pytorch_index_url": root,
            "agent.cuda_version": 12.6,
            "agent.package_manager.torch_nightly": True,
        }
    )
    nightly_builder = EnvironmentBuilder(nightly, cache=None)
    assert (
        nightly_builder.plan(task("torch"), nightly_builder.context()).requirements.torch_index
        == f"{root}/nightly/cu126"
    )
    none = env_config({"agent.package_manager.pytorch_resolve": "none", "agent.cuda_version": 12.1})
    none_builder = EnvironmentBuilder(none, cache=None)
    assert none_builder.plan(task("torch"), none_builder.context()).requirements.torch_index == ""
    # a task that names the wheel itself is left alone, and tasks without torch get no index
    assert builder.plan(task("torch @ https://x/torch.whl"), builder.context()).requirements.torch_index == ""
    assert builder.plan(task("numpy"), builder.context()).requirements.torch_index == ""


def test_the_fingerprint_follows_every_setting_that_changes_the_environment(
    env_config: ConfigFactory,
) -> None:
    def key(settings: dict, lines=("six",), cuda: str | None = None) -> str:  # type: ignore[no-untyped-def]
        config = env_config(settings)
        builder = EnvironmentBuilder(config, cache=None)
        ctx = context(config, cuda=cuda)
        return builder.plan(task(*lines), ctx).key

    base = key({})
    assert key({}) == base
    changed = {
        "extra_index_url": key({"agent.package_manager.extra_index_url": ["https://x.example/simple"]}),
        "force_upgrade": key({"agent.package_manager.force_upgrade": True}),
        "system_site_packages": key({"agent.package_manager.system_site_packages": True}),
        "pip_version": key({"agent.package_manager.pip_version": ["<24"]}),
        "installer": key({"agent.package_manager.installer": "pip"}),
        "type": key({"agent.package_manager.type": "uv"}),
        "flags": key({"agent.package_manager.extra_pip_install_flags": ["--no-compile"]}),
        "requirements": key({}, lines=("six==1.17.0",)),
    }
    assert base not in changed.values() and len(set(changed.values())) == len(changed), changed
    # what does not change the environment does not change the key
    assert key({"agent.pip_download_cache.path": "/elsewhere"}) == base
    assert key({"agent.pip_download_cache.enabled": False}) == base
    assert key({}, cuda="12.1") == base  # CUDA matters only to torch
    assert key({}, lines=("torch",), cuda="12.1") != key({}, lines=("torch",), cuda="11.8")


def test_pip_config_is_read_as_pip_reads_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = https://mirror.example/simple\nextra-index-url =\n  https://a.example/simple\n"
        "  https://b.example/simple\nfind-links = /opt/wheels\n[install]\ntrusted-host = mirror.example\n"
    )
    extra = tmp_path / "extra.conf"
    extra.write_text("[global]\nfind-links = /srv/wheels /srv/more\n")
    environ = {"HOME": str(home), "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    found = read_index_config(environ)
    assert found.index_url == "https://mirror.example/simple"
    assert found.extra_index_urls == ("https://a.example/simple", "https://b.example/simple")
    assert found.find_links == ("/opt/wheels",) and found.trusted_hosts == ("mirror.example",)
    found = read_index_config({**environ, "PIP_CONFIG_FILE": str(extra), "PIP_NO_INDEX": "1"})
    assert found.find_links == ("/srv/wheels", "/srv/more") and found.no_index
    found = read_index_config({**environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "file:///x"})
    assert found.index_url == "file:///x" and found.extra_index_urls == ()


def test_the_installer_is_uv_when_it_can_be(env_config: ConfigFactory) -> None:
    config = env_config()
    settings = PipManager(config).settings(context(config))
    assert find_uv() is not None  # the development environment has uv
    assert (settings.semantics, settings.installer, settings.index_strategy) == (
        "pip",
        "uv",
        "unsafe-best-match",
    )
    assert settings.pip_version == ()
    pip_only = env_config({"agent.package_manager.installer": "pip"})
    assert PipManager(pip_only).settings(context(pip_only)).installer == "pip"
    system = env_config({"agent.package_manager.system_site_packages": True})
    assert PipManager(system).settings(context(system)).installer == "pip"
    no_uv = PipManager(config).settings(context(config, environ={"PATH": "/nonexistent"}))
    if no_uv.installer == "uv":  # found through the uv Python package or beside the interpreter
        assert not no_uv.executable.startswith("/nonexistent")
    uv = env_config({"agent.package_manager.type": "uv"})
    uv_settings = UvManager(uv).settings(context(uv))
    assert (uv_settings.semantics, uv_settings.index_strategy) == ("uv", "first-index")
    best = env_config({"agent.package_manager.uv_unsafe_best_match": True})
    assert UvManager(best).settings(context(best)).index_strategy == "unsafe-best-match"
    default_pip = PipManager(
        env_config({"agent.package_manager.pip_version": ["<22.3 ; python_version >= '3.10'"]})
    )
    assert default_pip.settings(context(config)).pip_version == ("pip<22.3 ; python_version >= '3.10'",)


def test_the_download_cache_follows_pip_download_cache(env_config: ConfigFactory, tmp_path: Path) -> None:
    config = env_config({"agent.pip_download_cache.path": str(tmp_path / "dl")})
    assert PipManager(config).settings(context(config)).download_cache == str(tmp_path / "dl" / "uv")
    off = env_config({"agent.pip_download_cache.enabled": False})
    assert PipManager(off).settings(context(off)).download_cache == ""


def test_direct_resolution_tries_every_variant_the_cuda_version_runs() -> None:
    assert torch.variants_to_try("12.2", ["cu117", "cu121", "cu124", "cu118"]) == [
        "cu121",
        "cu118",
        "cu117",
        "cpu",
    ]
    assert torch.variants_to_try(None) == ["cpu"]


def test_the_best_wheel_is_the_newest_that_fits_the_interpreter() -> None:
    from packaging.requirements import Requirement
    from packaging.tags import Tag

    supported = [Tag("cp311", "cp311", "manylinux_2_17_x86_64"), Tag("py3", "none", "any")]
    base = "https://wheels.example/whl/cu121/torch/"
    links = [
        base + "torch-2.3.0%2Bcu121-cp311-cp311-manylinux_2_17_x86_64.whl#sha256=aa",
        base + "torch-2.3.0%2Bcu121-py3-none-any.whl",
        base + "torch-2.4.0%2Bcu121-cp312-cp312-manylinux_2_17_x86_64.whl",  # another Python
        base + "torch-2.5.0.dev20240101%2Bcu121-cp311-cp311-manylinux_2_17_x86_64.whl",  # a nightly
        base + "torchvision-0.18.0%2Bcu121-py3-none-any.whl",
    ]
    assert torch.best_wheel(Requirement("torch"), links, supported) == links[0]  # the better tag
    assert torch.best_wheel(Requirement("torch>2.3"), links, supported) is None
    assert torch.best_wheel(Requirement("torch>2.3"), links, supported, prereleases=True) == links[3]
    assert torch.best_wheel(Requirement("Torch==2.3.0"), links, supported) == links[0]
    page = '<a href="torch-2.3.0%2Bcu121-py3-none-any.whl#sha256=bb">x</a><a href="../other/">up</a>'
    assert torch.wheel_links(base, page) == [base + "torch-2.3.0%2Bcu121-py3-none-any.whl#sha256=bb"]
    line = torch.direct_line(Requirement("torch[opt]==2.3.0 ; python_version >= '3.8'"), links[0])
    assert line == f'torch[opt] @ {links[0]} ; python_version >= "3.8"'
    assert not torch.interpreter_tags("pypy", "3.10.0")
    assert Tag("py3", "none", "any") in torch.interpreter_tags("cpython", "3.11.7")
