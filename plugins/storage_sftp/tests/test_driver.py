"""The SFTP driver against the test sshd: pooling, parallel folder transfers, atomic uploads, errors.

Connections and SFTP sessions are counted twice: by the pool's own counters and in sshd's log
(``Accepted publickey`` per SSH login, ``Starting session: subsystem 'sftp'`` per channel).
"""

from __future__ import annotations

import io
import os
import signal
import threading
from pathlib import Path

import psutil
import pytest
from clearml_core_storage_sftp.driver import SFTPDriver, remote_path
from clearml_core_storage_sftp.errors import SFTPAuthenticationError, SFTPConnectionError
from clearml_core_storage_sftp.pool import pools

from clearml_core.storage.backends import driver_for
from clearml_core.storage.driver import TEMP_SUFFIX
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from clearml_core.storage.url import parse_url
from clearml_core.testing.servers import free_port
from plugins.storage_sftp.tests.support import SSHServer, conf_entry, keygen, load


@pytest.fixture
def config(sshd: SSHServer, session_known_hosts: Path, tmp_path: Path):
    return load(conf_entry(sshd) + f'sdk.sftp.known_hosts: "{session_known_hosts}"\n', tmp_path)


def _base(sshd: SSHServer, tmp_path: Path) -> tuple[str, Path]:
    """A fresh folder on the server: its URL and its path (the server is this machine)."""
    folder = sshd.data / tmp_path.name
    return f"sftp://{sshd.user}@{sshd.netloc}{folder}/", folder


# -- pooling -----------------------------------------------------------------------------------


def test_sequential_operations_share_one_connection_and_one_channel(sshd, config, tmp_path):
    base, folder = _base(sshd, tmp_path)
    logins, sessions = sshd.logins(), sshd.sftp_sessions()
    driver = driver_for(base, config)
    for index in range(15):
        url = parse_url(f"{base}f{index}.txt")
        driver.upload_stream(io.BytesIO(b"x" * index), url)
        assert driver.stat(url).size == index
        with driver.open_read(url) as stream:
            assert stream.read() == b"x" * index
    assert len(list(driver.list(parse_url(base)))) == 15
    # the same login written differently (no user in the URL: the entry's username applies)
    other = driver_for(f"sftp://{sshd.netloc}{folder}/", config)
    assert other is not driver
    assert other.exists(parse_url(f"sftp://{sshd.netloc}{folder}/f3.txt"))
    [pool] = pools()
    assert (pool.stats.connections_opened, pool.stats.channels_opened) == (1, 1)
    assert sshd.logins() - logins == 1
    assert sshd.sftp_sessions() - sessions == 1


def test_another_login_gets_its_own_pool(sshd, config, session_known_hosts, tmp_path, clearml_home):
    base, _folder = _base(sshd, tmp_path)
    driver_for(base, config).upload_stream(io.BytesIO(b"a"), parse_url(base + "a"))
    # the same key, found by the sftp-ssh resolver as ~/.ssh/id_ed25519: another login
    (clearml_home / ".ssh").mkdir()
    (clearml_home / ".ssh" / "id_ed25519").write_bytes(sshd.client_key.read_bytes())
    (clearml_home / ".ssh" / "id_ed25519").chmod(0o600)
    bare = load(f'sdk.sftp.known_hosts: "{session_known_hosts}"\n', tmp_path)
    assert driver_for(base, bare).exists(parse_url(base + "a"))
    sources = {p.login.source.rpartition(": ")[2] for p in pools()}
    assert sources == {"~/.ssh/id_ed25519", "sdk.sftp.credentials[0]"}
    assert all(p.stats.connections_opened == 1 for p in pools())


class _Gate(io.RawIOBase):
    """A stream that hands out its bytes only once ``parties`` uploads are reading at once."""

    def __init__(self, barrier: threading.Barrier, data: bytes) -> None:
        self._barrier = barrier
        self._data = data
        self._waited = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._waited:
            self._waited = True
            self._barrier.wait(timeout=60)
        count = min(len(buffer), len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


def test_parallel_uploads_spread_over_max_connections(sshd, session_known_hosts, tmp_path):
    config = load(
        conf_entry(sshd)
        + f'sdk.sftp {{ known_hosts: "{session_known_hosts}", max_connections: 2, channels_per_connection: 3 }}\n',
        tmp_path,
    )
    base, folder = _base(sshd, tmp_path)
    driver = driver_for(base, config)
    logins, sessions = sshd.logins(), sshd.sftp_sessions()
    barrier = threading.Barrier(5)  # five uploads must hold a channel each at the same time
    errors: list[BaseException] = []

    def upload(index: int) -> None:
        try:
            driver.upload_stream(
                io.BufferedReader(_Gate(barrier, b"%d" % index)), parse_url(f"{base}p{index}")
            )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(os.listdir(folder)) == [f"p{i}" for i in range(5)]
    [pool] = pools()
    assert pool.stats.most_busy == 5
    assert pool.stats.connections_opened == 2  # max_connections, not one per thread
    assert pool.stats.channels_opened == 5
    assert sshd.logins() - logins == 2
    assert sshd.sftp_sessions() - sessions == 5


class _Held(io.RawIOBase):
    """A stream that meets ``holding`` once (its upload then holds a channel), then waits for ``go``."""

    def __init__(self, holding: threading.Barrier, go: threading.Event) -> None:
        self._holding = holding
        self._go = go
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._done:
            return 0
        self._done = True
        self._holding.wait(timeout=60)
        assert self._go.wait(timeout=60)
        buffer[:4] = b"held"
        return 4


def test_a_server_allowing_fewer_sessions_than_asked(tmp_path_factory, tmp_path):
    """sshd's MaxSessions below channels_per_connection: a refused channel is no error; callers wait."""
    from plugins.storage_sftp.tests.conftest import running_sshd

    with running_sshd(tmp_path_factory.mktemp("sshd-small"), "MaxSessions 2\n") as small:
        known = tmp_path / "known_hosts"
        known.write_text(small.known_hosts_line())
        config = load(
            conf_entry(small)
            + f'sdk.sftp {{ known_hosts: "{known}", max_connections: 1, channels_per_connection: 4 }}\n',
            tmp_path,
        )
        base = f"sftp://{small.netloc}{small.data}/"
        driver = driver_for(base, config)
        holding, go = threading.Barrier(3), threading.Event()
        errors: list[BaseException] = []

        def upload(name: str, stream) -> None:
            try:
                driver.upload_stream(stream, parse_url(base + name))
            except BaseException as error:
                errors.append(error)

        held = [threading.Thread(target=upload, args=(f"h{i}", _Held(holding, go))) for i in range(2)]
        for thread in held:
            thread.start()
        holding.wait(timeout=60)  # both sessions the server allows are now in use
        late = threading.Thread(target=upload, args=("late", io.BytesIO(b"late")))
        late.start()
        [pool] = pools()
        for _ in range(3000):  # until the pool has asked for a third session and learnt the limit
            if pool._connections and pool._connections[0].limit == 2:
                break
            late.join(timeout=0.02)
        go.set()
        for thread in [*held, late]:
            thread.join(timeout=120)
        assert not errors, errors
        assert sorted(os.listdir(small.data)) == ["h0", "h1", "late"]
        assert pool._connections[0].limit == 2
        assert (pool.stats.connections_opened, pool.stats.channels_opened) == (1, 2)
        assert small.logins() == 1 and small.sftp_sessions() == 2


def test_folder_transfer_runs_in_parallel_both_ways(sshd, sftp_conf, tmp_path):
    from clearml_core.storage.manager import StorageManager

    sftp_conf.write_text(
        conf_entry(sshd) + "sdk.sftp.max_connections: 3\nsdk.storage.transfer.max_workers: 6\n"
    )
    source = tmp_path / "source"
    names = [f"{f'sub{i % 3}/' if i % 2 else ''}file {i:02d}.bin" for i in range(30)]
    for index, name in enumerate(names):
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1000 + 311 * index))
    base, folder = _base(sshd, tmp_path)
    logins = sshd.logins()
    StorageManager.upload_folder(str(source), base)
    for name in names:
        assert (folder / name).read_bytes() == (source / name).read_bytes(), name
    target = tmp_path / "target"
    assert StorageManager.download_folder(base, str(target)) == str(target)
    downloaded = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    relative = {n for n in downloaded if n.endswith(".bin")}
    assert len(relative) == len(names)
    [pool] = pools()
    assert pool.stats.most_busy > 1, "the folder transfer used one channel at a time"
    assert pool.stats.connections_opened <= 3
    assert sshd.logins() - logins == pool.stats.connections_opened
    assert not [p for p in folder.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


# -- uploads ---------------------------------------------------------------------------------


class _Failing(io.RawIOBase):
    def __init__(self, good: bytes) -> None:
        self._good = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._good:
            raise OSError("the local disk went away")
        count = min(len(buffer), len(self._good))
        buffer[:count] = self._good[:count]
        self._good = self._good[count:]
        return count


def test_failed_upload_keeps_the_old_file_and_leaves_no_temporary(sshd, config, tmp_path):
    base, folder = _base(sshd, tmp_path)
    driver = driver_for(base, config)
    url = parse_url(base + "deep/er/model.bin")
    driver.upload_stream(io.BytesIO(b"old version"), url)  # mkdir -p of deep/er
    assert (folder / "deep" / "er" / "model.bin").read_bytes() == b"old version"
    with pytest.raises(StorageError):
        driver.upload_stream(io.BufferedReader(_Failing(b"new" * 100_000)), url)
    assert (folder / "deep" / "er" / "model.bin").read_bytes() == b"old version"
    assert os.listdir(folder / "deep" / "er") == ["model.bin"]
    driver.upload_stream(io.BytesIO(b"after"), url)  # the pool is still usable
    assert driver.stat(url).size == 5


def test_upload_under_a_file_names_the_file(sshd, config, tmp_path):
    base, _folder = _base(sshd, tmp_path)
    driver = driver_for(base, config)
    driver.upload_stream(io.BytesIO(b"plain"), parse_url(base + "plain"))
    with pytest.raises(StorageError, match="is a file"):
        driver.upload_stream(io.BytesIO(b"x"), parse_url(base + "plain/inner/x"))


def test_listing_follows_symlinked_files_and_skips_dangling_links(sshd, config, tmp_path):
    base, folder = _base(sshd, tmp_path)
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "a.txt").write_bytes(b"aaa")
    (folder / "link.txt").symlink_to(folder / "real" / "a.txt")
    (folder / "dangling").symlink_to(folder / "nowhere")
    (folder / "linked-dir").symlink_to(folder / "real")
    driver = driver_for(base, config)
    top = {info.url.relative_to(parse_url(base)): info for info in driver.list(parse_url(base))}
    assert set(top) == {"real/", "link.txt", "linked-dir/"}
    assert top["link.txt"].size == 3
    deep = {info.url.relative_to(parse_url(base)) for info in driver.list(parse_url(base), recursive=True)}
    assert deep == {"real/a.txt", "link.txt"}  # symlinked folders are not walked (like os.walk)
    assert driver.delete_folder(parse_url(base)) == 2  # what list showed; every link goes too
    assert not folder.exists()
    assert (folder.parent).exists()


def test_home_relative_paths():
    assert remote_path(parse_url("sftp://h/~/data/x.bin")) == "data/x.bin"
    assert remote_path(parse_url("sftp://h/~/")) == "."
    assert remote_path(parse_url("sftp://h/data/x/")) == "/data/x"
    assert remote_path(parse_url("sftp://h/")) == "/"


def test_home_folder_stat(sshd, config):
    info = driver_for(f"sftp://{sshd.netloc}/~/", config).stat(parse_url(f"sftp://{sshd.netloc}/~/"))
    assert info.is_dir


# -- errors ----------------------------------------------------------------------------------


def test_missing_and_folder_errors(sshd, config, tmp_path):
    base, _folder = _base(sshd, tmp_path)
    driver = driver_for(base, config)
    with pytest.raises(ObjectNotFoundError, match="no such file"):
        driver.delete(parse_url(base + "never"))
    driver.upload_stream(io.BytesIO(b"x"), parse_url(base + "dir/x"))
    with pytest.raises(StorageError, match="is a folder"):
        driver.delete(parse_url(base + "dir"))
    with pytest.raises(StorageError, match="is a folder"):
        driver.open_read(parse_url(base + "dir"))
    with pytest.raises(ObjectNotFoundError):
        driver.stat(parse_url(base + "dir/x/"))


def test_permission_denied(sshd, config):
    # root may do nearly anything on this machine, but the kernel still refuses to unlink /proc files
    driver = driver_for(f"sftp://{sshd.netloc}/proc/version", config)
    with pytest.raises(PermissionDeniedError, match="permission denied"):
        driver.delete(parse_url(f"sftp://{sshd.netloc}/proc/version"))
    assert os.path.exists("/proc/version")


def _server_processes(sshd: SSHServer) -> list[psutil.Process]:
    """sshd's per-connection processes (children of the test sshd)."""
    return psutil.Process(sshd.pid).children(recursive=False)


def test_dropped_connection_is_transient_and_the_pool_recovers(sshd, config, tmp_path):
    base, _folder = _base(sshd, tmp_path)
    driver = driver_for(base, config)
    url = parse_url(base + "x.txt")
    driver.upload_stream(io.BytesIO(b"before"), url)
    before = {p.pid for p in _server_processes(sshd)}
    [pool] = pools()
    # kill the server side of our pooled connection, as a server restart or a network cut would
    for child in _server_processes(sshd):
        if child.pid in before:
            for process in [child, *child.children(recursive=True)]:
                os.kill(process.pid, signal.SIGKILL)
    with pytest.raises(TransientStorageError, match="SSH connection failed"):
        driver.stat(url)
    assert driver.stat(url).size == 6  # a fresh connection
    assert pool.stats.connections_opened == 2


def test_refused_connection_is_a_clear_user_error(sshd, session_known_hosts, tmp_path):
    port = free_port()
    config = load(
        f'sdk.sftp.credentials: [ {{ host: "127.0.0.1:{port}", key_filename: "{sshd.client_key}" }} ]\n',
        tmp_path,
    )
    with pytest.raises(SFTPConnectionError, match=f"127.0.0.1:{port}.*connection refused"):
        driver_for(f"sftp://127.0.0.1:{port}/x", config).stat(parse_url(f"sftp://127.0.0.1:{port}/x"))


def test_refused_key_names_user_host_and_what_was_tried(sshd, session_known_hosts, tmp_path):
    stranger = keygen(tmp_path / "stranger_key")
    config = load(
        conf_entry(sshd, key_filename=str(stranger), username="nobody")
        + f'sdk.sftp.known_hosts: "{session_known_hosts}"\n',
        tmp_path,
    )
    url = parse_url(f"sftp://{sshd.netloc}/tmp/x")
    with pytest.raises(SFTPAuthenticationError) as raised:
        driver_for(url, config).stat(url)
    message = str(raised.value)
    assert f"nobody@{sshd.netloc}" in message
    assert str(stranger) in message and "sdk.sftp.credentials[0]" in message
    assert "authorized_keys" in message


def test_encrypted_key_without_passphrase(sshd, session_known_hosts, tmp_path):
    locked = keygen(tmp_path / "locked_key", passphrase="correct horse battery")
    config = load(
        conf_entry(sshd, key_filename=str(locked)) + f'sdk.sftp.known_hosts: "{session_known_hosts}"\n',
        tmp_path,
    )
    url = parse_url(f"sftp://{sshd.netloc}/tmp/x")
    with pytest.raises(SFTPAuthenticationError, match="is encrypted and no passphrase"):
        driver_for(url, config).stat(url)


def test_driver_class(sshd, config):
    assert isinstance(driver_for(f"sftp://{sshd.netloc}/x", config), SFTPDriver)
