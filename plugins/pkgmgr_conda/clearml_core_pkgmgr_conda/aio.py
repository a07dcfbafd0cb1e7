"""Running rattler's coroutines from the agent's threads, stoppable.

rattler solves and installs in Rust, behind coroutines. The agent builds environments in plain
threads (one per task), so each call gets its own event loop; while it runs, the build's stop
request is checked every 50 ms, and a stop cancels the coroutine and raises ``BuildAborted``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from clearml_core.environments import BuildAborted

T = TypeVar("T")
POLL_SEC = 0.05


def run(make: Callable[[], Awaitable[T]], should_stop: Callable[[], str | None] | None = None) -> T:
    """The result of the coroutine ``make()`` returns, run to its end unless ``should_stop`` says so."""

    async def main() -> T:
        task = asyncio.ensure_future(make())
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_SEC)
            if done:
                return task.result()
            reason = should_stop() if should_stop is not None else None
            if reason:
                task.cancel()
                await asyncio.wait({task}, timeout=5)
                raise BuildAborted(reason)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # called from inside an event loop (a notebook, an async caller): run on a thread of our own
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=target, name="clearml-conda", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
