"""A real container engine and a test image for the docker plugin's tests, with no registry.

The engine: one that already answers (``DOCKER_HOST`` or the default socket), else a ``dockerd``
started here with its socket, data and state in a temporary folder (no bridge network: the
containers use the host's, which reaches the test servers on 127.0.0.1), stopped by its PID at the
end. The engine started here honours GPU requests without GPUs (see :data:`NVIDIA_HOOK`). The image: the machine's own Debian release, made with ``debootstrap`` (minbase, with
python3, python3-venv and git) from the mirror the machine's apt sources name, and ``docker
import``-ed. The root file system's tarball is kept under ``.local/docker-image/`` of the
checkout, so only the first run on a machine pays for debootstrap.

Podman (``--podman``) gets an API service of its own the same way: ``podman system service`` with
its storage, run state and ``containers.conf`` in a temporary folder (see :func:`start_podman`),
the same image imported into it.

Without an engine (no dockerd, not root) the tests are skipped, except in CI (``CI=true``), where
they fail: there the engine is part of what is tested.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
IMAGE_CACHE = ROOT / ".local" / "docker-image"
IMAGE_NAME = "clearml-core-test-python"
NVIDIA_HOOK = "nvidia-container-runtime-hook"
"""dockerd registers its ``nvidia`` device driver when this program is on its PATH; the driver
then sets ``NVIDIA_VISIBLE_DEVICES`` in the container from the GPU request and runs the program
as a hook. The engine started here gets a hook that does nothing, so GPU requests are honoured
as the engine reads them, on a machine without GPUs."""


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs a container engine for the docker tests: {reason}")
    pytest.skip(reason)


def _answers(url: str | None) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=url, timeout=10) if url else docker.from_env(timeout=10)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


def start_dockerd(folder: Path) -> Iterator[str]:
    """A dockerd of our own in ``folder``; yields its URL, stops it by PID."""
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None)
    if dockerd is None:
        unavailable("no container engine answers and dockerd is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        unavailable("no container engine answers, and starting dockerd needs root")
    url = f"unix://{folder}/docker.sock"
    tools = folder / "bin"
    tools.mkdir(exist_ok=True)
    hook = tools / NVIDIA_HOOK
    hook.write_text(
        "#!/bin/sh\n# stands in for the NVIDIA container toolkit's hook: no GPU here\ncat >/dev/null\n"
    )
    hook.chmod(0o755)
    log = open(folder / "dockerd.log", "wb")
    process = subprocess.Popen(
        [
            str(dockerd),
            "--host",
            url,
            "--data-root",
            str(folder / "data"),
            "--exec-root",
            str(folder / "exec"),
            "--pidfile",
            str(folder / "docker.pid"),
            "--bridge=none",
            "--iptables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', os.defpath)}"},
    )
    try:
        _wait_until_it_answers(process, url, folder / "dockerd.log", "dockerd")
        yield url
    finally:
        _stop(process)
        log.close()
        _unmount_under(folder)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_until_it_answers(process: subprocess.Popen[bytes], url: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(errors="replace").strip().splitlines()[-5:]
            unavailable(f"{what} did not start: {' / '.join(text)}")
        time.sleep(0.2)


def podman_limits() -> list[str]:
    """The open-files and processes limits podman's containers get: podman asks for 1048576 of
    each for root, which fails (``error setting rlimit``) where root may not raise its hard limits
    (no CAP_SYS_RESOURCE, as in a container); these stay within what this machine allows."""
    import resource

    def within(kind: int, ceiling: int) -> int:
        hard = resource.getrlimit(kind)[1]
        return ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)

    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text(encoding="utf-8").strip())
    files = within(resource.RLIMIT_NOFILE, 1048576)
    # podman's own process was seen keeping to pid_max processes, and more then fails too
    processes = within(resource.RLIMIT_NPROC, pid_max)
    return [f"nofile={files}:{files}", f"nproc={processes}:{processes}"]


def start_podman(folder: Path) -> Iterator[str]:
    """``podman system service`` of our own in ``folder`` (storage, run state, containers.conf:
    cgroupfs, events in a file, the limits of :func:`podman_limits`); yields its URL, stops it by
    PID. Its containers use the host's network, so it needs no network set up."""
    podman = shutil.which("podman")
    if podman is None:
        unavailable("podman is not installed (apt-get install podman)")
    if os.geteuid() != 0:
        unavailable("starting podman's service with storage of its own needs root")
    url = f"unix://{folder}/podman.sock"
    conf = folder / "containers.conf"
    limits = ", ".join(f'"{limit}"' for limit in podman_limits())
    conf.write_text(
        f'[containers]\ndefault_ulimits = [{limits}]\n\n[engine]\ncgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n',
        encoding="utf-8",
    )
    (folder / "tmp").mkdir(exist_ok=True)
    log_path = folder / "podman.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [
            podman,
            "--root",
            str(folder / "storage"),
            "--runroot",
            str(folder / "run"),
            "--tmpdir",
            str(folder / "tmp"),
            "--storage-driver",
            "overlay",
            "system",
            "service",
            "--time=0",
            url,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "CONTAINERS_CONF": str(conf)},
    )
    try:
        _wait_until_it_answers(process, url, log_path, "podman's service")
        yield url
    finally:
        _stop(process)
        log.close()
        _unmount_under(folder)


def _unmount_under(folder: Path) -> None:
    """What the engine left mounted in its folder (its network namespace), so it can be deleted."""
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(f"{folder}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False, timeout=30)


def engine_url(tmp_root: Path) -> Iterator[str]:
    named = os.environ.get("DOCKER_HOST")
    if _answers(named):
        yield named or "unix:///var/run/docker.sock"
        return
    yield from start_dockerd(tmp_root)


# -- the image --------------------------------------------------------------------------------


def release() -> str:
    text = Path("/etc/os-release").read_text(encoding="utf-8") if Path("/etc/os-release").exists() else ""
    match = re.search(r"^VERSION_CODENAME=(\S+)", text, re.M)
    if not match:
        unavailable("this machine names no Debian release (/etc/os-release has no VERSION_CODENAME)")
    return match.group(1).strip('"')


def mirror(codename: str) -> str:
    """The Debian mirror of the machine's apt sources that serves ``codename`` itself."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text(encoding="utf-8").split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.M))
            if codename in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == codename:
                return parts[1]
    unavailable(f"no apt source of this machine serves {codename}")
    raise AssertionError


def rootfs_tarball(codename: str) -> Path:
    """The test image's root file system as a tar, made once per machine (see the module)."""
    from clearml_core.filelocks import ExclusiveFileLock

    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    tarball = IMAGE_CACHE / f"{codename}-rootfs.tar"
    with ExclusiveFileLock(IMAGE_CACHE / f"{codename}.lock"):
        if tarball.exists():
            return tarball
        debootstrap = shutil.which("debootstrap") or (
            "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
        )
        if debootstrap is None or os.geteuid() != 0:
            unavailable("the test image is made with debootstrap, as root (apt-get install debootstrap)")
        rootfs = IMAGE_CACHE / f"{codename}-rootfs.tmp"
        shutil.rmtree(rootfs, ignore_errors=True)
        completed = subprocess.run(
            [
                str(debootstrap),
                "--variant=minbase",
                "--include=python3,python3-venv,git",
                codename,
                str(rootfs),
                mirror(codename),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if completed.returncode != 0:
            shutil.rmtree(rootfs, ignore_errors=True)
            unavailable(
                f"debootstrap failed: {(completed.stderr or completed.stdout).strip().splitlines()[-1:]}"
            )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = tarball.with_suffix(".tar.tmp")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=600)
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def ensure_image(client: object) -> str:
    """``clearml-core-test-python:<release>`` in the engine, imported from the tarball when missing."""
    from docker.errors import ImageNotFound

    codename = release()
    name = f"{IMAGE_NAME}:{codename}"
    try:
        client.images.get(name)  # type: ignore[attr-defined]
        return name
    except ImageNotFound:
        pass
    tarball = rootfs_tarball(codename)
    client.api.import_image_from_file(  # type: ignore[attr-defined]
        str(tarball),
        repository=name,  # the tag in the name: podman 4's import ignores a tag of its own
        changes=[
            "ENV LANG=C.UTF-8",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["python3"]',
        ],
    )
    return name
