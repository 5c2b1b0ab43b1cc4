"""An asyncio event loop on a thread of its own, so blocking code can run coroutines on it.

The blocking client drives its asyncio-only features (the bidirectional stream) here rather
than implementing them twice: one loop per client, started on first use, stopped on close.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """A daemon thread running one event loop; :meth:`run` runs a coroutine there and waits."""

    __slots__ = ("_lock", "_loop", "_name", "_stopped", "_thread")

    def __init__(self, name: str = "smruntime-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called: the loop does not start again."""
        return self._stopped

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return its result (or raise its error).

        An interrupt of the waiting thread (KeyboardInterrupt) cancels the coroutine.
        """
        loop = self._start()
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a blocking call from the client's own event-loop thread would wait forever "
                               "(an event middleware must not call the blocking client)")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Cancel what still runs, stop the loop and wait for its thread. Idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            self._stopped = True
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"{self._name} is stopped")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_serve, args=(loop,), name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def __repr__(self) -> str:
        return f"LoopThread({self._name!r}, running={self.running})"


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
