"""Crash consistency: SIGKILL the connector at seeded random moments of a paced sync, then resume.

A STATE the connector prints is a promise: the platform stores it and the next sync starts after
it, so every record before it must already be in S3, whatever happens next. The only crash that
gives the connector no chance to tidy up is ``kill -9`` (an OOM kill, a node lost), so each trial:

1. starts ``write`` (``file_size_mb`` 1, ``flush_interval_seconds`` 1, a 50 ms tick, so objects
   complete and states come out *during* the sync) and feeds it records of 2-3 streams with a
   STREAM state every few records, in small groups with short pauses, like a live source;
2. kills the process group with SIGKILL at a moment drawn from ``random.Random(seed)``: after a
   drawn time, or as soon as the N-th state has been printed;
3. checks: the states printed are sent ones, in order, each once, with the right counts; every
   record sent before the LAST printed state is in S3 (all objects of the bucket are read back,
   records matched by a unique ``uid``), unchanged, once; nothing unsent or partial is there;
4. resumes like a source: a second run gets every line after that last printed state and runs to
   completion; then every record of the whole sync is in S3, exactly once if it came before the
   killed run's last printed state, and at most twice (the killed run may have committed it
   without printing its state) if it came after.

Catalogs carry no generation ids (plain append), except one trial with PyAirbyte's
``generation_id = minimum_generation_id = 1`` in append mode: the resumed run then truncates, and
exactly this generation's records must survive, the killed attempt's included.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from integration_tests.connector import (
    ConnectorProcess,
    MakeConfig,
    Message,
    configured_catalog,
    record,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.readback import FIXED_EMITTED_AT, jsonl_lines, with_destination_count
from integration_tests.s3_server import MotoServer

TRIAL_SEEDS: Final = tuple(range(7001, 7023))
"""22 append trials, one seeded kill point each."""
GENERATION_SEED: Final = 7100
"""One more trial, with PyAirbyte-style generation ids."""
GENERATION_KILL_STATE: Final = 3

STREAMS: Final = ("users", "orders", "events")
TICK_ENV: Final = {"DESTINATION_S3_TICK_SECONDS": "0.05"}
FILE_SIZE_MB: Final = 1
FLUSH_INTERVAL_S: Final = 1
"""The spec's minimums: objects complete (and states come out) about every second."""

START_TIMEOUT_S: Final = 30.0
KILL_WAIT_S: Final = 4.0
"""How long a trial keeps stdin open after its last line, waiting for its kill moment."""
DRAIN_TIMEOUT_S: Final = 10.0
RUN_TIMEOUT_S: Final = 60.0
MARKERS_FOLDER: Final = "_tarsal_generations/"


# ---------------------------------------------------------------------------------------------
# The seeded plan of one trial
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One stdin line of the plan; `uid` for a RECORD, `count` (recordCount) for a STATE."""

    message: Message
    uid: str | None = None
    count: int | None = None

    @property
    def is_state(self) -> bool:
        return self.uid is None

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.message["record"]["data"]
        return data


@dataclass(frozen=True)
class Plan:
    seed: int
    streams: tuple[str, ...]
    lines: tuple[Line, ...]
    groups: tuple[tuple[int, int, float], ...]  # (start, end, pause after) of each send
    kill_after_seconds: float | None  # counted from the first line sent
    kill_after_states: int | None  # or: as soon as this many states are printed

    @property
    def records(self) -> list[tuple[int, Line]]:
        return [(position, line) for position, line in enumerate(self.lines) if not line.is_state]

    def describe(self) -> str:
        states = sum(line.is_state for line in self.lines)
        when = (
            f"{self.kill_after_seconds:.2f} s after the first line"
            if self.kill_after_seconds is not None
            else f"at the printed state #{self.kill_after_states}"
        )
        return (
            f"seed {self.seed}: {len(self.records)} records, {states} states, "
            f"{len(self.streams)} streams, {len(self.groups)} groups; kill {when}"
        )


def stream_counts(lines: Sequence[Line]) -> list[int]:
    """recordCount of each STATE among `lines` as one process counts it: the records of the
    state's stream since that stream's previous state (in the same process)."""
    since: Counter[str] = Counter()
    counts = []
    for line in lines:
        if line.is_state:
            stream = line.message["state"]["stream"]["stream_descriptor"]["name"]
            counts.append(since.pop(stream, 0))
        else:
            since[line.message["record"]["stream"]] += 1
    return counts


def make_plan(seed: int) -> Plan:
    """Records of 2-3 streams (some padded to make objects rotate at 1 MiB), a STREAM state every
    few records and one per stream at the end, cut into groups of 1-12 lines with 20-60 ms
    pauses (about 2 s of input), and a kill moment within the input or at the N-th state."""
    rng = random.Random(seed)
    streams = STREAMS[: rng.choice((2, 3))]
    pad = rng.choice((0, 300, 3000, 20_000))
    state_every = rng.randint(2, 8)
    lines: list[Line] = []
    state_number = 0

    def add_state(stream: str) -> None:
        nonlocal state_number
        state_number += 1
        lines.append(Line(stream_state(stream, {"seed": seed, "seq": state_number})))

    for index in range(rng.randint(120, 320)):
        stream = rng.choice(streams)
        uid = f"{seed}-{index}"
        data: dict[str, Any] = {"uid": uid, "stream": stream, "i": index}
        if pad:
            data["pad"] = f"{uid}:" + "x" * pad
        lines.append(Line(record(stream, data, emitted_at=FIXED_EMITTED_AT), uid=uid))
        if rng.randint(1, state_every) == 1:
            add_state(rng.choice(streams))
    for stream in streams:
        add_state(stream)
    counts = iter(stream_counts(lines))
    lines = [
        line if not line.is_state else Line(line.message, count=next(counts)) for line in lines
    ]

    groups = []
    start = 0
    while start < len(lines):
        end = min(len(lines), start + rng.randint(1, 12))
        groups.append((start, end, rng.uniform(0.02, 0.06)))
        start = end
    sending = sum(pause for _, _, pause in groups)
    states = sum(line.is_state for line in lines)
    if rng.random() < 0.5:
        kill_after_seconds: float | None = rng.uniform(0.05, sending)
        kill_after_states = None
    else:
        kill_after_seconds, kill_after_states = None, rng.randint(1, min(8, states))
    return Plan(seed, streams, tuple(lines), tuple(groups), kill_after_seconds, kill_after_states)


# ---------------------------------------------------------------------------------------------
# Running, killing, reading back
# ---------------------------------------------------------------------------------------------


@dataclass
class Killed:
    """What the killed run did: lines sent, messages printed (up to its death)."""

    sent: int
    messages: list[Message]
    stderr: str
    seconds_to_kill: float

    def states(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.messages if m.get("type") == "STATE"]


def _read_until(process: ConnectorProcess, deadline: float, stop: Callable[[], bool]) -> bool:
    """Read stdout until `deadline` (this is the pacing pause) or until `stop()`; True if
    stopped. Bounded: never waits past the deadline."""
    while not stop():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            if process.next_message(timeout=remaining) is None:
                return True  # EOF: the connector died on its own; the checks will say why
        except TimeoutError:
            return stop()
    return True


def run_and_kill(config: Mapping[str, Any], catalog: Mapping[str, Any], plan: Plan) -> Killed:
    """Feed the plan paced, SIGKILL at its kill moment, collect everything it printed."""
    with start_write(config, catalog, env=TICK_ENV) as process:
        process.wait_for_type("LOG", timeout=START_TIMEOUT_S)  # started: reading stdin now
        started = time.monotonic()
        # A timed kill must not wait for the next message to notice its moment has come.
        kill_at = started + plan.kill_after_seconds if plan.kill_after_seconds else math.inf

        def kill_now() -> bool:
            if plan.kill_after_seconds is not None:
                return time.monotonic() >= kill_at
            printed = sum(1 for m in process.messages if m.get("type") == "STATE")
            return printed >= (plan.kill_after_states or 0)

        def until(seconds: float) -> float:
            return min(time.monotonic() + seconds, kill_at)

        sent = 0
        stopped = False
        for start, end, pause in plan.groups:
            if kill_now():
                stopped = True
                break
            try:
                process.send_many(line.message for line in plan.lines[start:end])
            except OSError:  # it died on its own (broken pipe): the checks will say why
                stopped = True
                break
            sent = end
            if _read_until(process, until(pause), kill_now):
                stopped = True
                break
        if not stopped:  # every line sent; stdin stays open, as with a source still running
            _read_until(process, until(KILL_WAIT_S), kill_now)
        seconds = time.monotonic() - started
        process.kill()  # SIGKILL to the process group
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (
            time.monotonic() < deadline and process.next_line(timeout=DRAIN_TIMEOUT_S) is not None
        ):
            pass
        return Killed(sent, list(process.messages), process.stderr, seconds)


def read_records(s3: MotoServer, bucket: str) -> Iterator[dict[str, Any]]:
    """The `data` of every record in every data object of the bucket (markers skipped), parsed
    strictly: a partial or corrupt object fails here."""
    for key in s3.data_keys(bucket):  # markers and manifests skipped
        assert key.endswith(".jsonl"), key
        for envelope in jsonl_lines(s3.read_object(bucket, key)):
            yield envelope["data"]


def uid_counts(s3: MotoServer, bucket: str, plan: Plan) -> Counter[str]:
    """How many times each uid is in S3; every copy must equal the record sent."""
    sent = {line.uid: line.data for _, line in plan.records}
    counts: Counter[str] = Counter()
    for data in read_records(s3, bucket):
        uid = data.get("uid")
        if uid in sent:
            assert data == sent[uid], f"{plan.describe()}: record {uid} altered"
        counts[str(uid)] += 1
    return counts


def assert_printed_states(plan: Plan, killed: Killed) -> int:
    """Printed states are sent ones, in order, each once, with their counts; returns the plan
    position of the last one (-1 if none)."""
    positions = {id(line): position for position, line in enumerate(plan.lines)}
    sent_states = [line for line in plan.lines[: killed.sent] if line.is_state]
    last = -1
    for printed in killed.states():
        body = {key: value for key, value in printed.items() if key != "destinationStats"}
        matches = [line for line in sent_states if line.message["state"] == body]
        assert len(matches) == 1, f"{plan.describe()}: printed state not sent: {printed}"
        [line] = matches
        position = positions[id(line)]
        assert position > last, f"{plan.describe()}: state printed out of order or twice: {printed}"
        assert printed == with_destination_count(line.message, line.count or 0), printed
        last = position
    return last


@dataclass
class Tally:
    """Totals over the module's trials, reported at its end (README quotes them)."""

    kills: int = 0
    records_checked: int = 0
    durable_at_kill: int = 0
    duplicates: int = 0
    states_printed_before_kill: int = 0
    kills_after_a_printed_state: int = 0
    kills_before_the_last_line: int = 0
    kill_moments: list[float] = field(default_factory=list)


TALLY: Final = Tally()


def crash_and_resume(
    s3: MotoServer,
    bucket: str,
    config: Mapping[str, Any],
    catalog: Mapping[str, Any],
    plan: Plan,
    extra_uids: Sequence[str] = (),
) -> tuple[int, Counter[str]]:
    """One trial up to the final read; returns (last printed position, uid counts in S3).
    `extra_uids` are records already in the bucket before the trial: the killed sync must leave
    them; what the resumed sync does with them is for the caller to check."""
    killed = run_and_kill(config, catalog, plan)
    context = (
        f"{plan.describe()}; killed after {killed.seconds_to_kill:.2f} s, {killed.sent} lines sent"
    )
    assert "Traceback (most recent call last)" not in killed.stderr, context
    assert not [m for m in killed.messages if m.get("type") == "TRACE"], context
    last = assert_printed_states(plan, killed)

    # Right after the kill: everything before the last printed state is there, exactly once.
    after_kill = uid_counts(s3, bucket, plan)
    known = {line.uid for position, line in plan.records if position < killed.sent}
    known |= set(extra_uids)
    assert set(after_kill) <= known, f"{context}: records never sent: {set(after_kill) - known}"
    assert max(after_kill.values(), default=1) == 1, f"{context}: a record written twice"
    promised = [line.uid for position, line in plan.records if position < last]
    missing = [uid for uid in promised if uid not in after_kill]
    assert not missing, f"{context}: {len(missing)} records before the last printed state lost"
    gone = [uid for uid in extra_uids if uid not in after_kill]
    assert not gone, f"{context}: a killed sync removed earlier data: {gone}"

    # Resume after the last printed state, to completion.
    rest = plan.lines[last + 1 :]
    resumed = run_write(
        config, catalog, [line.message for line in rest], env=TICK_ENV, timeout=RUN_TIMEOUT_S
    ).assert_success()
    assert resumed.states() == [
        with_destination_count(line.message, count)
        for line, count in zip(
            [line for line in rest if line.is_state], stream_counts(rest), strict=True
        )
    ], context

    final = uid_counts(s3, bucket, plan)
    for position, line in plan.records:
        copies = final[str(line.uid)]
        limit = 1 if position < last else 2
        assert 1 <= copies <= limit, f"{context}: {line.uid} (line {position}) is there {copies}x"
    TALLY.kills += 1
    TALLY.records_checked += len(plan.records)
    TALLY.durable_at_kill += len(promised)
    TALLY.duplicates += sum(copies - 1 for copies in final.values() if copies > 1)
    TALLY.states_printed_before_kill += len(killed.states())
    TALLY.kills_after_a_printed_state += bool(killed.states())
    TALLY.kills_before_the_last_line += killed.sent < len(plan.lines)
    TALLY.kill_moments.append(killed.seconds_to_kill)
    return last, final


# ---------------------------------------------------------------------------------------------
# Trials
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", TRIAL_SEEDS)
def test_sigkill_loses_nothing_before_the_last_printed_state(
    seed: int, s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """Append, no generation ids: after kill -9 and a resume from the last printed state, every
    record is in S3; only records after that state may be there twice."""
    plan = make_plan(seed)
    config = make_config(bucket, file_size_mb=FILE_SIZE_MB, flush_interval_seconds=FLUSH_INTERVAL_S)
    catalog = configured_catalog(list(plan.streams))
    _, final = crash_and_resume(s3, bucket, config, catalog, plan)
    assert set(final) == {line.uid for _, line in plan.records}, plan.describe()


def generation_plan() -> Plan:
    """Killed once states have come out, so the truncate has a killed attempt's records to keep."""
    return dataclasses.replace(
        make_plan(GENERATION_SEED), kill_after_seconds=None, kill_after_states=GENERATION_KILL_STATE
    )


@pytest.mark.slow
def test_sigkill_then_truncating_resume_keeps_exactly_this_generation(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """PyAirbyte sends generation_id = minimum_generation_id = 1 with append: the resumed
    attempt truncates at its end. Records of an earlier sync without generation go; everything
    of generation 1 stays, including what the killed attempt committed (its objects carry a
    generation-1 marker), so nothing before the last printed state is lost."""
    plan = generation_plan()
    config = make_config(bucket, file_size_mb=FILE_SIZE_MB, flush_interval_seconds=FLUSH_INTERVAL_S)
    streams = list(plan.streams)
    old = [record(stream, {"uid": f"old-{stream}"}) for stream in streams]
    run_write(config, configured_catalog(streams), old, timeout=RUN_TIMEOUT_S).assert_success()
    old_uids = [f"old-{stream}" for stream in streams]

    catalog = configured_catalog(
        streams, destination_sync_mode="append", generation_id=1, minimum_generation_id=1, sync_id=1
    )
    last, final = crash_and_resume(s3, bucket, config, catalog, plan, extra_uids=old_uids)

    assert last >= 0, "no state was printed before the kill: nothing of the killed attempt to keep"
    assert set(final) == {line.uid for _, line in plan.records}, "the truncate left other data"
    markers = s3.list_keys(bucket, MARKERS_FOLDER)
    assert markers, "no generation markers written"
    stray = [key for key in markers if key.split("/")[2] != "1"]
    assert not stray, f"markers of another generation: {stray}"


# ---------------------------------------------------------------------------------------------
# Figures for README
# ---------------------------------------------------------------------------------------------

PLANS: Final = (*(make_plan(seed) for seed in TRIAL_SEEDS), generation_plan())
KILL_POINTS: Final = len(PLANS)
"""kill -9 points tried (one per trial)."""
RECORDS_CHECKED: Final = sum(len(plan.records) for plan in PLANS)
"""Records whose presence and multiplicity are checked after the resume, over all trials."""


@pytest.fixture(scope="module", autouse=True)
def _report_tally(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print what the trials of this run actually did (kill moments vary with the machine)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not TALLY.kills:
        return
    moments = sorted(TALLY.kill_moments)
    with capture.global_and_fixture_disabled():  # else pytest swallows teardown output
        reporter.write_line(
            f"\ncrash consistency: {TALLY.kills} SIGKILLs (of {KILL_POINTS} planned; "
            f"{TALLY.kills_after_a_printed_state} after at least one printed state, "
            f"{TALLY.kills_before_the_last_line} before the last line was sent), "
            f"{TALLY.records_checked} records checked after resume "
            f"({TALLY.durable_at_kill} verified durable at the kill, {TALLY.duplicates} duplicates "
            f"after the last printed state), {TALLY.states_printed_before_kill} states printed "
            f"before the kills; kill moments {moments[0]:.2f}-{moments[-1]:.2f} s into the sync"
        )
