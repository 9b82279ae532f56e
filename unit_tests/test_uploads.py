"""Upload lanes, the byte budget and the pool: ordering, failure and backpressure, with threads and
events (every wait is bounded; nothing sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pytest

from destination_s3.uploads import ByteBudget, UploadPool

WAIT = 5.0  # upper bound for something that must happen
BRIEF = 0.05  # how long we watch for something that must not happen


class Gate:
    """A task that blocks until opened (bounded, so a failing test never hangs)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self._open = threading.Event()

    def open(self) -> None:
        self._open.set()

    def task(self, then: Callable[[], None] = lambda: None) -> Callable[[], None]:
        def run() -> None:
            self.started.set()
            assert self._open.wait(WAIT)
            then()

        return run


def _in_thread(action: Callable[[], object]) -> threading.Event:
    """Run `action` on a new thread; the returned event is set once it returns."""
    returned = threading.Event()

    def run() -> None:
        action()
        returned.set()

    threading.Thread(target=run, daemon=True).start()
    return returned


@pytest.fixture
def pool() -> Iterator[UploadPool]:
    upload_pool = UploadPool(workers=4, budget=ByteBudget(1 << 30))
    yield upload_pool
    upload_pool.shutdown()


def _wait(result: Future[None]) -> BaseException | None:
    return result.exception(timeout=WAIT)


# --- Lanes ---------------------------------------------------------------------------------


def test_lane_runs_its_tasks_in_order_one_at_a_time(pool: UploadPool) -> None:
    gate = Gate()
    done: list[int] = []
    running = 0
    most_running = 0
    lock = threading.Lock()

    def step(index: int) -> Callable[[], None]:
        def run() -> None:
            nonlocal running, most_running
            with lock:
                running += 1
                most_running = max(most_running, running)
            done.append(index)
            with lock:
                running -= 1

        return run

    lane = pool.lane()
    results = [lane.submit(gate.task(), 1)]
    results += [lane.submit(step(index), 1) for index in range(50)]
    assert gate.started.wait(WAIT)
    assert done == []  # four workers are free, yet nothing jumped the blocked first task
    gate.open()
    pool.wait_idle()
    assert done == list(range(50))
    assert most_running == 1
    assert all(_wait(result) is None for result in results)
    assert pool.failure is None
    assert pool.budget.in_flight == 0


def test_lanes_run_independently(pool: UploadPool) -> None:
    gate = Gate()
    ran = threading.Event()
    pool.lane().submit(gate.task(), 1)
    other = pool.lane().submit(ran.set, 1)
    assert ran.wait(WAIT)  # not held back by the blocked lane
    assert _wait(other) is None
    gate.open()
    pool.wait_idle()


def test_failed_task_fails_the_later_ones_in_its_lane_without_running_them(
    pool: UploadPool,
) -> None:
    gate = Gate()
    error = ValueError("part 2 failed")
    ran: list[str] = []

    def fail() -> None:
        ran.append("fail")
        raise error

    lane = pool.lane()
    first = lane.submit(gate.task(lambda: ran.append("first")), 10)
    failing = lane.submit(fail, 10)
    later = [lane.submit(lambda: ran.append("later"), 10) for _ in range(3)]
    gate.open()
    pool.wait_idle()
    assert _wait(first) is None
    assert _wait(failing) is error
    assert all(_wait(result) is error for result in later)
    assert ran == ["first", "fail"]
    assert pool.failure is error
    assert pool.budget.in_flight == 0  # bytes of the tasks that never ran are given back


def test_task_submitted_after_its_lane_already_failed_does_not_run(pool: UploadPool) -> None:
    error = OSError("connection reset")

    def fail() -> None:
        raise error

    lane = pool.lane()
    assert _wait(lane.submit(fail, 5)) is error
    ran = threading.Event()
    after = lane.submit(ran.set, 5)
    assert _wait(after) is error
    pool.wait_idle()
    assert not ran.is_set()
    assert pool.budget.in_flight == 0


def test_other_lanes_keep_running_after_one_fails(pool: UploadPool) -> None:
    def fail() -> None:
        raise RuntimeError("boom")

    assert _wait(pool.lane().submit(fail, 1)) is not None
    ran = threading.Event()
    assert _wait(pool.lane().submit(ran.set, 1)) is None
    assert ran.is_set()


# --- The pool ------------------------------------------------------------------------------


def test_pool_failure_is_the_first_failure(pool: UploadPool) -> None:
    first_error, second_error = ValueError("first"), ValueError("second")

    def raise_(error: BaseException) -> Callable[[], None]:
        def run() -> None:
            raise error

        return run

    assert _wait(pool.lane().submit(raise_(first_error), 1)) is first_error
    assert _wait(pool.lane().submit(raise_(second_error), 1)) is second_error
    pool.wait_idle()
    assert pool.failure is first_error


def test_pool_failure_stays_none_when_everything_succeeds(pool: UploadPool) -> None:
    lane = pool.lane()
    for _ in range(10):
        lane.submit(lambda: None, 3)
    pool.wait_idle()
    assert pool.failure is None


def test_wait_idle_returns_at_once_when_nothing_was_submitted(pool: UploadPool) -> None:
    assert _in_thread(pool.wait_idle).wait(WAIT)


def test_wait_idle_returns_once_every_task_is_done(pool: UploadPool) -> None:
    gates = [Gate() for _ in range(3)]
    results = [pool.lane().submit(gate.task(), 1) for gate in gates]
    results.append(pool.lane().submit(lambda: None, 1))
    idle = _in_thread(pool.wait_idle)
    assert all(gate.started.wait(WAIT) for gate in gates)
    gates[0].open()
    gates[1].open()
    assert not idle.wait(BRIEF)
    gates[2].open()
    assert idle.wait(WAIT)
    assert all(result.done() for result in results)


def test_wait_idle_also_returns_after_failures(pool: UploadPool) -> None:
    gate = Gate()

    def fail() -> None:
        raise ValueError("x")

    lane = pool.lane()
    lane.submit(gate.task(), 1)
    lane.submit(fail, 1)
    lane.submit(lambda: None, 1)
    idle = _in_thread(pool.wait_idle)
    assert not idle.wait(BRIEF)
    gate.open()
    assert idle.wait(WAIT)
    assert isinstance(pool.failure, ValueError)


# --- The byte budget -----------------------------------------------------------------------


def test_budget_counts_reserved_bytes() -> None:
    budget = ByteBudget(10)
    budget.reserve(4)
    budget.reserve(6)  # exactly at the limit still fits
    assert budget.in_flight == 10
    budget.give_back(4)
    assert budget.in_flight == 6


def test_budget_blocks_while_over_the_limit() -> None:
    budget = ByteBudget(10)
    budget.reserve(8)
    reserved = _in_thread(lambda: budget.reserve(5))
    assert not reserved.wait(BRIEF)
    assert budget.in_flight == 8
    budget.give_back(2)  # 6 + 5 is still over the limit
    assert not reserved.wait(BRIEF)
    budget.give_back(1)  # 5 + 5 fits
    assert reserved.wait(WAIT)
    assert budget.in_flight == 10


def test_budget_lets_one_oversized_reservation_through_when_idle() -> None:
    budget = ByteBudget(10)
    assert _in_thread(lambda: budget.reserve(100)).wait(WAIT)
    assert budget.in_flight == 100
    blocked = _in_thread(lambda: budget.reserve(1))
    assert not blocked.wait(BRIEF)
    budget.give_back(100)
    assert blocked.wait(WAIT)
    assert budget.in_flight == 1


def test_oversized_reservation_waits_until_the_budget_is_idle() -> None:
    budget = ByteBudget(10)
    budget.reserve(1)
    oversized = _in_thread(lambda: budget.reserve(50))
    assert not oversized.wait(BRIEF)
    budget.give_back(1)
    assert oversized.wait(WAIT)
    assert budget.in_flight == 50


def test_submitting_blocks_while_uploads_hold_the_budget() -> None:
    pool = UploadPool(workers=2, budget=ByteBudget(10))
    gate = Gate()
    try:
        pool.lane().submit(gate.task(), 8)
        assert gate.started.wait(WAIT)
        ran = threading.Event()
        submitted = _in_thread(lambda: pool.lane().submit(ran.set, 5))
        assert not submitted.wait(BRIEF)
        assert not ran.is_set()
        gate.open()
        assert submitted.wait(WAIT)
        pool.wait_idle()
        assert ran.is_set()
        assert pool.budget.in_flight == 0
    finally:
        gate.open()
        pool.shutdown()


def test_chained_task_reserves_its_bytes_when_submitted() -> None:
    pool = UploadPool(workers=2, budget=ByteBudget(100))
    gate = Gate()
    try:
        lane = pool.lane()
        lane.submit(gate.task(), 30)
        lane.submit(lambda: None, 20)  # waits behind the first task, but its bytes count now
        assert pool.budget.in_flight == 50
        gate.open()
        pool.wait_idle()
        assert pool.budget.in_flight == 0
    finally:
        gate.open()
        pool.shutdown()
