"""Talking to Redis: the client, its errors in plain words, and a backoff while Redis is away.

redis-py reconnects by itself on the next command and retries a command a couple of times when a
connection breaks. What it does not do is slow down: while the server is gone, every call would
wait for its own connection attempt. :class:`Link` remembers that the server is away and, until
the next attempt is due (0.05 s, doubling up to 2 s), fails calls at once with
:class:`RedisUnreachableError`, so a daemon's threads (log batches, abort checks, heartbeats) do
not pile up on a dead socket. The first call after the delay tries again; its success ends the
outage. The outage and the recovery are logged once each, not per call.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from clearml_core.controlplane import ControlPlaneError
from clearml_core_controlplane_redis.settings import RedisSettings, RedisTarget

log = logging.getLogger("clearml_core.controlplane.redis")

MIN_DELAY_SEC = 0.05
MAX_DELAY_SEC = 2.0
BLOCKING_SLICE_SEC = 1.0
"""The longest blocking command the plane sends; replies are awaited longer than that."""


class RedisUnreachableError(ControlPlaneError):
    """Redis cannot be reached now (refused, timed out, loading its data); it may come back."""


def describe(error: BaseException) -> str:
    """redis-py's message without its noise (``Error 111 connecting to h:p. Connection refused.``)."""
    text = str(error).strip() or type(error).__name__
    text = re.sub(r"^Error \d+ (connecting to|while writing to|while reading from) [^ ]+\.?\s*", "", text)
    return text.rstrip(".") or type(error).__name__


def connect(target: RedisTarget, settings: RedisSettings) -> redis.Redis:
    """A redis-py client for the target (a pool of connections, made on first use)."""
    options: dict[str, Any] = {}
    if target.tls:
        options.update(
            ssl=True,
            ssl_cert_reqs="required" if settings.verify else "none",
            ssl_check_hostname=settings.verify,
            ssl_ca_certs=settings.ca_certs or None,
            ssl_certfile=settings.certfile or None,
            ssl_keyfile=settings.keyfile or None,
        )
    return redis.Redis(
        host=target.host,
        port=target.port,
        db=target.db,
        username=target.username,
        password=target.password,
        socket_connect_timeout=settings.connect_timeout_sec,
        socket_timeout=max(settings.socket_timeout_sec, BLOCKING_SLICE_SEC + 5),
        socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        decode_responses=True,
        client_name="clearml-core",
        **options,
    )


class Link:
    """The client of one control plane, whether the server answered lately, and when to try again."""

    def __init__(self, target: RedisTarget, settings: RedisSettings) -> None:
        self.target = target
        self.where = target.url
        self.client = connect(target, settings)
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._delay = MIN_DELAY_SEC
        self._reason = ""
        self._was_up = False
        self._reconnected_at: float | None = None

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        """The client (``Any``: redis-py's annotations ignore ``decode_responses``), with its errors
        turned into clear :class:`ControlPlaneError` s."""
        self.check()
        try:
            yield self.client
        except redis.AuthenticationError as error:
            raise self.refused(error) from None
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise self.failed(error) from None
        except redis.ResponseError as error:
            raise self.explain(error) from None
        except redis.RedisError as error:
            raise ControlPlaneError(f"the Redis control plane at {self.where}: {describe(error)}") from None
        self.succeeded()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    # -- what Redis said, in plain words -----------------------------------------------------
    def refused(self, error: BaseException) -> ControlPlaneError:
        if not self.target.password:
            return ControlPlaneError(
                f"the Redis control plane at {self.where} needs a password: set agent.redis.password (or "
                "write it in agent.control_plane: redis://:PASSWORD@HOST:PORT/DB)"
            )
        return ControlPlaneError(
            f"the Redis control plane at {self.where} refused the credentials ({describe(error)}); check the "
            "user and password in agent.control_plane or agent.redis.username / agent.redis.password"
        )

    def explain(self, error: redis.ResponseError) -> ControlPlaneError:
        text = describe(error)
        upper = text.upper()
        prefix = self.target.prefix
        if "WRONGTYPE" in upper:
            return ControlPlaneError(
                f"Redis at {self.where} holds a key under the prefix {prefix!r} that clearml-core did not "
                "write (WRONGTYPE); another program uses this prefix: give clearml-core its own with "
                "?prefix=NAME in agent.control_plane"
            )
        if upper.startswith(("NOAUTH", "WRONGPASS")):
            return self.refused(error)
        if upper.startswith("NOPERM"):
            return ControlPlaneError(
                f"the Redis user of {self.where} may not do this ({text}); grant it the commands it needs "
                f"on the keys ~{prefix}:*"
            )
        if upper.startswith("OOM"):
            return ControlPlaneError(f"Redis at {self.where} is out of memory ({text}); raise its maxmemory")
        if upper.startswith("READONLY"):
            return ControlPlaneError(
                f"Redis at {self.where} is a read-only replica; point agent.control_plane at the primary"
            )
        return ControlPlaneError(f"the Redis control plane at {self.where}: {text}")

    # -- the backoff -------------------------------------------------------------------------
    @property
    def down(self) -> bool:
        return self._down_since is not None

    def retry_in(self) -> float:
        """Seconds until the next attempt is due (0 when the link is up or the attempt is due)."""
        return max(0.0, self._retry_at - time.monotonic()) if self.down else 0.0

    def since_reconnect(self) -> float:
        """Seconds since the link came back from its last outage (infinite when it never had one)."""
        return float("inf") if self._reconnected_at is None else time.monotonic() - self._reconnected_at

    def check(self) -> None:
        """Raise at once while an outage's backoff delay runs."""
        if self._down_since is not None and time.monotonic() < self._retry_at:
            raise self._unreachable()

    def failed(self, error: BaseException) -> RedisUnreachableError:
        """Record a failed attempt; returns the error to raise."""
        with self._lock:
            now = time.monotonic()
            self._reason = describe(error)
            if self._down_since is None:
                self._down_since = now
                self._delay = MIN_DELAY_SEC
                if self._was_up:
                    log.warning(
                        "lost the connection to the Redis control plane at %s (%s); reconnecting with backoff",
                        self.where,
                        self._reason,
                    )
            else:
                self._delay = min(self._delay * 2, MAX_DELAY_SEC)
            self._retry_at = now + self._delay
        return self._unreachable()

    def succeeded(self) -> None:
        if self._down_since is None:
            self._was_up = True
            return
        with self._lock:
            if self._down_since is None:
                return
            now = time.monotonic()
            away = now - self._down_since
            self._down_since = None
            was_up, self._was_up = self._was_up, True
            if was_up:
                self._reconnected_at = now
        if was_up:
            log.info("reconnected to the Redis control plane at %s after %.1f s", self.where, away)

    def _unreachable(self) -> RedisUnreachableError:
        if "CERTIFICATE" in self._reason.upper() or "SSL" in self._reason.upper():
            hint = (
                "check agent.redis.tls.ca_certs (the CA that signed the server's certificate), and that the "
                "server speaks TLS (rediss://) or not (redis://)"
            )
        else:
            hint = "check that redis-server runs there and that agent.control_plane names it"
        return RedisUnreachableError(
            f"cannot reach the Redis control plane at {self.where}: {self._reason}; {hint}"
        )


__all__ = ["BLOCKING_SLICE_SEC", "Link", "RedisUnreachableError", "connect", "describe"]
