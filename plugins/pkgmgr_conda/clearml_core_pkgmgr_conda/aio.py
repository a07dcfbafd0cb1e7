"""Running rattler's coroutines from the agent's threads, stoppable.

rattler solves and installs in Rust, behind coroutines. The agent builds environments in plain
threads (one per task), so each call gets its own event loop; while it runs, the build's stop
request is checked every 50 ms, and a stop cancels the coroutine and raises ``BuildAborted``.

After each call the loop waits :data:`SETTLE_SEC`: rattler's worker threads hand a result over
while they hold the GIL, and a process that exits in that moment (``agent execute``, ``agent
build``, a test run) crashes in Python's finalization (py-rattler 0.28: about one exit in seven
right after a solve, ``PyGILState_Release: thread state … must be current``). 2 ms was enough in
tests; 10 ms is a margin.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from clearml_core.environments import BuildAborted

T = TypeVar("T")
POLL_SEC = 0.05
SETTLE_SEC = 0.01


def run(make: Callable[[], Awaitable[T]], should_stop: Callable[[], str | None] | None = None) -> T:
    """The result of the coroutine ``make()`` returns, run to its end unless ``should_stop`` says so."""

    async def main() -> T:
        task = asyncio.ensure_future(make())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=POLL_SEC)
                if done:
                    return task.result()
                reason = should_stop() if should_stop is not None else None
                if reason:
                    task.cancel()
                    await asyncio.wait({task}, timeout=5)
                    raise BuildAborted(reason)
        finally:
            await asyncio.sleep(SETTLE_SEC)  # see the module documentation

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
