"""A real redis-server on 127.0.0.1 for the tests and the benchmark: started, restarted, killed.

:class:`RedisServer` runs Debian's ``redis-server`` with its own port and data folder (nothing of
the machine's own Redis is used or touched), optionally with a password or an append-only file,
and stops it by its PID. ``scripts/test.sh`` installs the package when it is missing; on a machine
without it the tests are skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from clearml_core.testing.servers import free_port, stop_process, wait_for_port

REDIS_SERVER = "redis-server"


def redis_server_binary() -> str | None:
    return shutil.which(REDIS_SERVER) or next(
        (path for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(path)), None
    )


class RedisServer:
    """One redis-server process on 127.0.0.1, restartable on the same port and data folder."""

    def __init__(
        self,
        folder: Path,
        *,
        password: str | None = None,
        users: dict[str, str] | None = None,
        appendonly: bool = False,
        port: int | None = None,
        tls: bool = False,
    ) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: scripts/test.sh installs Debian's redis-server"
            )
        self.binary = binary
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.users = users or {}
        self.appendonly = appendonly
        self.port = port or free_port()
        self.tls = tls
        if tls:
            self._make_certificate()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def certificate(self) -> Path:
        """The server's self-signed certificate (for 127.0.0.1), its own CA."""
        return self.folder / "server.crt"

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(self.folder / "server.key"), "-out", str(self.certificate),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip

    @property
    def log(self) -> Path:
        return self.folder / f"redis-{self.starts}.log"

    def command(self) -> list[str]:
        if self.tls:
            listen = [
                "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self.certificate), "--tls-key-file", str(self.folder / "server.key"),
                "--tls-ca-cert-file", str(self.certificate), "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            listen = ["--port", str(self.port)]
        command = [
            self.binary,
            "--bind", "127.0.0.1",
            *listen,
            "--dir", str(self.folder),
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "",
        ]  # fmt: skip
        if self.appendonly:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        for user, secret in self.users.items():
            command += ["--user", user, "on", f">{secret}", "~*", "&*", "+@all"]
        return command

    def start(self) -> RedisServer:
        self.starts += 1
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.process, 30, name="redis-server")
        except RuntimeError as error:
            raise RuntimeError(f"{error}; its log:\n{self.log.read_text(errors='replace')}") from None
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, timeout=20)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would stop it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def url(self, prefix: str | None = None, *, password: str | None = None, db: int = 0) -> str:
        auth = f":{password}@" if password else ""
        query = f"?prefix={prefix}" if prefix else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}127.0.0.1:{self.port}/{db}{query}"

    def client(self):  # type: ignore[no-untyped-def]
        """A plain redis-py client, to arrange and look at what the plane wrote."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, decode_responses=True)


def fresh_prefix(name: str = "t") -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def running_redis(folder: Path, **options: object) -> Iterator[RedisServer]:
    server = RedisServer(folder, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["RedisServer", "fresh_prefix", "redis_server_binary", "running_redis"]
