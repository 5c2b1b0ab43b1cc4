"""An asyncio event loop that blocking code drives from its own threads.

The blocking client runs its asyncio-only features (the bidirectional stream) here rather than
implementing them twice: one loop per client, made on first use, closed on close.

A blocking call runs its coroutine by driving the loop on the calling thread, so a call costs
no hand-off between threads: with a loop on a thread of its own, each call woke that thread
and was woken by it, about 30 µs each way on a 2-CPU machine, twice per round trip of an
event. When another thread is driving the loop already (one thread reads a stream while
another sends on it), the call hands its coroutine to that thread and waits; should that
thread stop driving first (its own call done), the waiting call drives the loop itself.
Between calls nothing runs: what the server sends waits in the socket, and HTTP/2 flow
control holds the server back once the window is full.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import threading
import weakref
from typing import Any, Callable, Coroutine, TypeVar

__all__ = ["BlockingLoop"]

T = TypeVar("T")

_LOOPS: weakref.WeakSet[BlockingLoop] = weakref.WeakSet()
"""Every BlockingLoop, for a forked child to give a loop of its own."""

_INHERITED: list[Any] = []
"""In a forked child, the event loops (and what runs on them) it inherited: kept, never closed
or finalized, because a loop's epoll set is the parent's too, and closing the child's copy of a
transport takes the parent's socket out of it."""


def _new_loops_after_fork() -> None:
    for blocking in list(_LOOPS):
        blocking._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_loops_after_fork)


class BlockingLoop:
    """One event loop; :meth:`run` runs a coroutine on it, driving it from the calling thread."""

    __slots__ = ("__weakref__", "_changed", "_driver", "_loop", "_name", "_on_fork", "_stopped")

    def __init__(self, name: str = "smruntime-loop", *, on_fork: Callable[[], None] | None = None) -> None:
        self._name = name
        self._changed = threading.Condition()  # the driver changed, or a handed-over call is done
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: int | None = None  # the thread driving the loop now
        self._stopped = False
        self._on_fork = on_fork  # run in a forked child, once the loop is left behind
        _LOOPS.add(self)

    @property
    def running(self) -> bool:
        """Whether the loop was made (a call used it) and not yet closed."""
        return self._loop is not None

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called: the loop takes no more calls."""
        return self._stopped

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return its result (or raise its error).

        An interrupt (KeyboardInterrupt) while it runs cancels the coroutine, then raises.
        """
        return self._run(coroutine)

    def stop(self) -> None:
        """Cancel what is still pending and close the loop. Idempotent."""
        with self._changed:
            if self._stopped:
                return
            self._stopped = True
            if self._loop is None:
                return
        self._run(_finish_the_others(), closing=True)  # a thread driving the loop sees its call cancelled
        with self._changed:
            while self._driver is not None:
                self._changed.wait()
            loop, self._loop = self._loop, None
        if loop is not None:
            if _other_loop_running():  # asyncio runs one loop per thread at a time
                _on_another_thread(lambda: _close(loop))
            else:
                _close(loop)

    def _forked(self) -> None:
        """In a forked child: leave the inherited loop behind (see _INHERITED); the next call
        makes a new one. Only the forking thread lives on, so nothing drives the old one."""
        if self._loop is not None:
            _INHERITED.append(self._loop)
        self._loop = None
        self._driver = None
        self._changed = threading.Condition()  # another parent thread may have held the old one
        if self._on_fork is not None:
            self._on_fork()

    # -- running a call -----------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T], *, closing: bool = False) -> T:
        me = threading.get_ident()
        with self._changed:
            if self._stopped and not closing:
                coroutine.close()
                raise RuntimeError(f"{self._name} is stopped")
            if self._driver == me:
                coroutine.close()
                raise RuntimeError("a blocking call from the client's own event loop would wait forever "
                                   "(an event middleware must not call the blocking client)")
            if _other_loop_running():
                handed = None  # this thread runs a loop of its own: drive ours from another thread
            else:
                loop = self._loop
                if loop is None:
                    loop = self._loop = asyncio.new_event_loop()
                if self._driver is None:
                    self._driver = me
                    return self._drive(loop, coroutine)
                handed = asyncio.run_coroutine_threadsafe(coroutine, loop)
                handed.add_done_callback(self._notify)
        if handed is None:
            return _on_another_thread(lambda: self._run(coroutine, closing=closing))
        return self._wait_for(handed)

    def _wait_for(self, handed: concurrent.futures.Future[T]) -> T:
        """The result of a call handed to the thread driving the loop; drive it ourselves
        should that thread stop driving before the call is done."""
        me = threading.get_ident()
        try:
            with self._changed:
                while not handed.done() and self._driver is not None:
                    self._changed.wait()
                if handed.done():
                    return handed.result()
                loop = self._loop
                if loop is None:  # closed meanwhile
                    raise RuntimeError(f"{self._name} is stopped")
                self._driver = me
                return self._drive(loop, _result_of(handed))
        except BaseException:
            handed.cancel()  # interrupted while waiting: the call is cancelled on the loop
            raise

    def _drive(self, loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run the loop on this thread until ``coroutine`` is done. Entered as the driver,
        holding ``_changed``: lets go of it while the loop runs, and of the driver's role on
        the way out (holding ``_changed`` again, for the caller's ``with`` to let go)."""
        self._changed.release()
        try:
            task = loop.create_task(coroutine)
            with _CancelOnInterrupt(loop, task) as interrupted:
                try:
                    return loop.run_until_complete(task)
                except asyncio.CancelledError:
                    if interrupted:
                        raise KeyboardInterrupt from None
                    raise
                except BaseException:
                    if not task.done():  # interrupted outside the loop's control: cancel the call
                        task.cancel()
                        loop.run_until_complete(asyncio.wait([task]))
                    raise
        finally:
            self._changed.acquire()
            self._driver = None
            self._changed.notify_all()

    def _notify(self, future: concurrent.futures.Future[Any]) -> None:
        with self._changed:
            self._changed.notify_all()

    def __repr__(self) -> str:
        return f"BlockingLoop({self._name!r}, running={self.running})"


class _CancelOnInterrupt:
    """While the main thread drives the loop, make Ctrl-C cancel the call (the loop's callbacks
    are never cut part way), as ``asyncio.run`` does; a second Ctrl-C interrupts at once.
    ``bool(self)`` says whether it was interrupted."""

    __slots__ = ("_interrupted", "_loop", "_previous", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self._loop = loop
        self._task = task
        self._interrupted = False
        self._previous: Any = None

    def __enter__(self) -> _CancelOnInterrupt:
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def __bool__(self) -> bool:
        return self._interrupted

    def _on_interrupt(self, signum: int, frame: object) -> None:
        if self._interrupted or self._task.done():
            raise KeyboardInterrupt
        self._interrupted = True
        self._task.cancel()
        self._loop.call_soon_threadsafe(_nothing)  # wake the loop if it waits


def _nothing() -> None:
    pass


async def _result_of(handed: concurrent.futures.Future[T]) -> T:
    return await asyncio.wrap_future(handed)


async def _finish_the_others() -> None:
    """Cancel every other task on the loop and wait for them; finish the async generators."""
    me = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def _other_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _close(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))  # the callbacks still queued: handed-over calls learn they are over
    loop.close()


def _on_another_thread(run: Callable[[], T]) -> T:
    """``run()`` on a short-lived thread, waiting for it: for a blocking call made where an
    event loop of the caller's own is running (which ours cannot run inside)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, run()))
        except BaseException as error:  # handed to the caller
            outcome.append((False, error))

    thread = threading.Thread(target=target, name="smruntime-call", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
