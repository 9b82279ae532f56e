"""Runs upload work on a small thread pool, in order per object, within one memory budget.

The main thread never waits on S3 unless the bytes handed over but not yet uploaded exceed the
budget; then it waits for uploads to catch up (backpressure instead of unbounded memory).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor


class ByteBudget:
    """Counts bytes handed to uploads and not yet sent; `reserve` blocks while over the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight = 0
        self._changed = threading.Condition()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def reserve(self, size: int) -> None:
        with self._changed:
            # A single hand-over larger than the limit still goes when nothing else is in flight.
            while self._in_flight and self._in_flight + size > self.limit:
                self._changed.wait()
            self._in_flight += size

    def give_back(self, size: int) -> None:
        with self._changed:
            self._in_flight -= size
            self._changed.notify_all()


class UploadPool:
    """A thread pool whose tasks run in submission order within each lane (one lane per object)."""

    def __init__(self, workers: int, budget: ByteBudget) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-upload")
        self.budget = budget
        # The first task failure; the sync loop checks it and stops.
        self.failure: BaseException | None = None
        self._unfinished = 0
        self._idle = threading.Condition()

    def wait_idle(self) -> None:
        """Block until every task submitted through a lane has finished (or failed)."""
        with self._idle:
            while self._unfinished:
                self._idle.wait()

    def track(self, result: Future[None]) -> None:
        """Count a lane task until it is done; remember the first failure."""
        with self._idle:
            self._unfinished += 1

        def finished(done: Future[None]) -> None:
            error = CancelledError() if done.cancelled() else done.exception()
            with self._idle:
                if error is not None and self.failure is None:
                    self.failure = error
                self._unfinished -= 1
                self._idle.notify_all()

        result.add_done_callback(finished)

    def lane(self) -> Lane:
        return Lane(self)

    def submit(self, task: Callable[[], None], size: int) -> Future[None]:
        self.budget.reserve(size)
        return self.run_reserved(task, size)

    def run_reserved(self, task: Callable[[], None], size: int) -> Future[None]:
        """Run a task whose `size` bytes are already reserved; they are given back after it."""

        def run() -> None:
            try:
                task()
            finally:
                self.budget.give_back(size)

        return self._executor.submit(run)

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking tasks and drop the queued ones; with `wait`, also wait for the running."""
        self._executor.shutdown(wait=wait, cancel_futures=True)


class Lane:
    """Tasks of one object: each starts after the previous one succeeded; after a failure, the
    rest fail with the same error without running."""

    def __init__(self, pool: UploadPool) -> None:
        self._pool = pool
        self._tail: Future[None] | None = None

    def submit(self, task: Callable[[], None], size: int) -> Future[None]:
        result: Future[None] = Future()
        self._pool.track(result)
        previous = self._tail
        self._tail = result

        def forward(done: Future[None]) -> None:
            error = CancelledError() if done.cancelled() else done.exception()
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(None)

        if previous is None or (previous.done() and previous.exception() is None):
            self._pool.submit(task, size).add_done_callback(forward)
            return result

        # Reserve now, on the caller's thread: backpressure applies to chained tasks too, and a
        # worker thread never blocks on the budget.
        self._pool.budget.reserve(size)

        def start(done: Future[None]) -> None:
            error = CancelledError() if done.cancelled() else done.exception()
            if error is not None:
                self._pool.budget.give_back(size)
                result.set_exception(error)
                return
            try:
                self._pool.run_reserved(task, size).add_done_callback(forward)
            except RuntimeError as shut_down:  # the sync is being torn down after a failure
                self._pool.budget.give_back(size)
                result.set_exception(shut_down)

        previous.add_done_callback(start)
        return result
