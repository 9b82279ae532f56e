"""The write core in process: `Sync` against an in-memory S3 (unit_tests/fake_s3.py) that fails by
rule, with a clock the test moves by hand.

Every test is golden: it names each STATE line released and the step after which it came out.
A step is a batch of input lines, a quiet tick (`Quiet`: the clock moves on, an empty batch) or
an action between batches (`Do`). Before each step the uploads handed over so far are let finish
(or reach a call the fake holds back), as a slow stdin would allow: what is released when is then
the same on every run.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.exceptions import EndpointConnectionError

from destination_s3.catalog import catalog_of
from destination_s3.config import parse_config
from destination_s3.errors import Cancelled
from destination_s3.storage import LIFECYCLE_ADVICE, Bucket, StorageError
from destination_s3.sync import Sync
from destination_s3.tuning import Tuning
from destination_s3.upload import ObjectUpload, UploadAborted, abort_uploads
from unit_tests.fake_s3 import ENDPOINT, FakeS3Client, Rule, client_error, md5, multipart_etag

WAIT = 5.0  # bound for a hand-off between threads that must happen
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
MS0 = 1_700_000_000_000
BIG = 100_000  # 56 records of this padding make one 5 MiB part and a ~0.4 MB tail


def key(stream: str, ms: int = MS0) -> str:
    return f"{stream}/2023_11_14_{ms}_0.jsonl"


def marker(stream: str, generation: int, object_key: str) -> str:
    return f"_tarsal_generations/{stream}/{generation}/{object_key.split('/')[-1]}.marker"


def record(stream: str, number: int, pad: int = 0) -> bytes:
    data = b'{"id":%d,"pad":"%s"}' % (number, b"x" * pad)
    return b'{"type":"RECORD","record":{"stream":"%s","emitted_at":%d,"data":%s}}' % (
        stream.encode(),
        MS0,
        data,
    )


def big_records(stream: str, first: int) -> list[bytes]:
    return [record(stream, number, BIG) for number in range(first, first + 56)]


def _stream_state(stream: str, cursor: int) -> bytes:  # the state's fields, without braces
    descriptor = b'{"stream_descriptor":{"name":"%s"}' % stream.encode()
    return b'"type":"STREAM","stream":%s,"stream_state":{"cursor":%d}}' % (descriptor, cursor)


def state(stream: str, cursor: int) -> bytes:
    return b'{"type":"STATE","state":{%s}}' % _stream_state(stream, cursor)


def released(stream: str, cursor: int, count: int) -> bytes:
    """The line the connector prints for `state(stream, cursor)`: the state unchanged, with
    destinationStats added."""
    stats = b'"destinationStats":{"recordCount":%d.0}' % count
    return b'{"type":"STATE","state":{%s,%s}}' % (_stream_state(stream, cursor), stats)


def catalog(*streams: str, mode: str = "append", **generations: int) -> dict[str, Any]:
    entries = [
        {
            "stream": {
                "name": name,
                "json_schema": {"type": "object", "properties": {"id": {}, "pad": {}}},
                "supported_sync_modes": ["full_refresh", "incremental"],
            },
            "sync_mode": "incremental",
            "destination_sync_mode": mode,
            **generations,
        }
        for name in streams
    ]
    return {"streams": entries}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Quiet:
    """A quiet tick after the clock moved on by `seconds`."""

    seconds: float = 0.0


@dataclass(frozen=True)
class Do:
    """Something done between batches (no batch is fed)."""

    action: Callable[[], object]


Step = list[bytes] | Quiet | Do


def release(rule: Rule) -> Do:
    assert rule.release is not None
    return Do(rule.release.set)


@dataclass
class Outcome:
    # (index of the step after which the line came out, line); len(steps) = at the end.
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    error: BaseException | None = None


@pytest.fixture
def fake() -> Iterator[FakeS3Client]:
    client = FakeS3Client()
    yield client
    client.release_all()  # let a held-back upload thread end


@pytest.fixture
def caplog_airbyte(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="airbyte")
    return caplog


def make_sync(
    fake: FakeS3Client,
    clock: Clock,
    streams: dict[str, Any],
    file_size_mb: int | None = None,
    write_manifest: bool = False,
    **tuning: Any,
) -> Sync:
    raw: dict[str, Any] = {
        "s3_bucket_name": "bucket",
        "s3_bucket_region": "us-east-1",
        "credentials": {"auth_type": "default_chain"},
        "format": {"format_type": "JSONL"},
        "flush_interval_seconds": 60,
        # These tests pin the data objects and markers; the manifest has tests of its own.
        "write_manifest": write_manifest,
    }
    if file_size_mb is not None:
        raw["file_size_mb"] = file_size_mb
    knobs: dict[str, Any] = {"upload_workers": 1, "abort_seconds": 2.0, **tuning}
    bucket = Bucket(cast(Any, fake), "bucket")
    return Sync(parse_config(raw), catalog_of(streams), bucket, Tuning(**knobs), clock)


def settle(sync: Sync, fake: FakeS3Client) -> None:
    """Wait until every upload task handed over has finished, or a call of it is held back."""
    pool = sync._pool  # a peek inside: how many upload tasks are unfinished (the spill tests
    # also read what the memory relief spilled and what the writers hold)
    deadline = time.monotonic() + WAIT
    while pool._unfinished and not fake.blocked:
        assert time.monotonic() < deadline, "uploads did not settle"
        time.sleep(0.001)


def drive(sync: Sync, clock: Clock, fake: FakeS3Client, steps: Sequence[Step]) -> Outcome:
    outcome = Outcome()
    at = 0

    def blocks() -> Iterator[bytes]:
        nonlocal at
        for index, step in enumerate(steps):
            settle(sync, fake)
            at = index
            if isinstance(step, Do):
                step.action()
            elif isinstance(step, Quiet):
                clock.now += step.seconds
                yield b""
            else:
                yield b"".join(line + b"\n" for line in step)
        settle(sync, fake)
        at = len(steps)

    try:
        for line in sync.run(blocks()):
            outcome.lines.append((at, line))
    except (Exception, Cancelled) as error:
        outcome.error = error
    return outcome


def rows(fake: FakeS3Client, object_key: str) -> list[dict[str, Any]]:
    lines = fake.objects[object_key].body.decode().splitlines()
    return [json.loads(line) for line in lines]


def ids(fake: FakeS3Client, object_key: str) -> list[int]:
    return [row["data"]["id"] for row in rows(fake, object_key)]


def calls(fake: FakeS3Client, *operations: str) -> list[tuple[str, str]]:
    return [call for call in list(fake.calls) if call[0] in operations]


def storage_error(outcome: Outcome) -> StorageError:
    assert isinstance(outcome.error, StorageError), outcome.error
    return outcome.error


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "airbyte" and r.levelno == level]


# --- When states are released ----------------------------------------------------------------


def test_a_state_waits_for_the_object_holding_earlier_records(fake: FakeS3Client) -> None:
    clock = Clock()
    sync = make_sync(fake, clock, catalog("users", "orders"), file_size_mb=1, upload_workers=2)
    held = fake.block("PutObject", key="users/")
    steps: list[Step] = [
        [state("users", 0), record("users", 1, pad=400_000), state("users", 1)],
        [record("orders", 2), state("orders", 2)],
        # The users object reaches 1 MiB and completes; its PutObject is held back.
        [record("users", 3, pad=400_000), record("users", 4, pad=400_000)],
        release(held),
        Quiet(),
    ]
    outcome = drive(sync, clock, fake, steps)
    assert outcome.error is None
    assert outcome.lines == [
        (0, released("users", 0, 0)),  # nothing before it: out at once
        (4, released("users", 1, 1)),  # once the users object is stored, not while held back
        (5, released("orders", 2, 1)),  # its object completes at the end
    ]
    assert fake.keys() == [key("orders"), key("users")]
    assert ids(fake, key("users")) == [1, 3, 4]
    assert ids(fake, key("orders")) == [2]
    first = rows(fake, key("users"))[0]
    assert first["_tarsal_metadata"]["_tarsal_emitted_at"] == str(MS0)
    assert len(first["_tarsal_metadata"]["_tarsal_ab_id"]) == 36
    assert fake.objects[key("users")].attrs == {
        "ContentType": "application/jsonl",
        "Metadata": {},
    }


def test_flush_on_interval_follows_the_clock(fake: FakeS3Client) -> None:
    clock = Clock()
    sync = make_sync(fake, clock, catalog("users", "orders"))
    seen: list[list[str]] = []
    look = Do(lambda: seen.append(fake.keys()))
    steps: list[Step] = [
        [record("users", 1), state("users", 1), record("orders", 2)],
        Quiet(59.0),  # the state is 59 s old: no flush
        look,
        Quiet(1.0),  # 60 s: the users object completes; orders began after the state: stays open
        Quiet(),
        look,
        [record("users", 3), state("users", 3)],  # a new users object, opened at T0 + 60 s
        Quiet(60.0),  # both open objects hold records from before this state
        Quiet(),
    ]
    outcome = drive(sync, clock, fake, steps)
    assert outcome.error is None
    assert outcome.lines == [(4, released("users", 1, 1)), (8, released("users", 3, 1))]
    assert seen == [[], [key("users")]]
    assert fake.keys() == [key("orders"), key("users"), key("users", MS0 + 60_000)]
    assert ids(fake, key("users", MS0 + 60_000)) == [3]


# Two streams whose buffers go over a budget of 100,000 bytes in the second batch (60,140 bytes
# of users, 40,560 of orders).
OVER_BUDGET: list[Step] = [
    [record("users", 1, 60_000), state("users", 1), record("orders", 2, 10_000)],
    [state("orders", 2)] + [record("orders", n, 10_000) for n in (3, 4, 5)],  # over budget
    Quiet(),
]


@pytest.mark.parametrize(
    ("spill", "warned"),
    [
        pytest.param({"spill_budget": 0}, False, id="spilling-off"),
        pytest.param({"spill_budget": 50_000}, False, id="no-room-to-spill"),
        pytest.param({"spill_directory": "/nonexistent/spill"}, True, id="disk-refuses"),
    ],
)
def test_without_room_to_spill_memory_pressure_completes_the_earliest_opened_object(
    fake: FakeS3Client,
    caplog_airbyte: pytest.LogCaptureFixture,
    spill: dict[str, Any],
    warned: bool,
) -> None:
    clock = Clock()
    sync = make_sync(fake, clock, catalog("users", "orders"), buffer_budget=100_000, **spill)
    outcome = drive(sync, clock, fake, OVER_BUDGET)
    assert outcome.error is None
    # users (opened first) completed after step 1, which brought the buffers under half the
    # budget: orders stayed open until the end.
    assert outcome.lines == [(2, released("users", 1, 1)), (3, released("orders", 2, 1))]
    assert calls(fake, "PutObject") == [
        ("PutObject", key("users")),
        ("PutObject", key("orders")),
    ]
    warnings = messages(caplog_airbyte, logging.WARNING)
    assert warnings == (
        [
            "Could not spill stream buffers to /nonexistent/spill (No such file or directory): "
            "completing the objects opened earliest instead, "
            "which makes more, smaller objects. Point DESTINATION_S3_SPILL_DIR at a writable "
            "disk with room, or set DESTINATION_S3_SPILL_MB=0 to silence this."
        ]
        if warned
        else []
    )


def spilling_sync(
    fake: FakeS3Client,
    clock: Clock,
    directory: Path,
    streams: Sequence[str] = ("users", "orders"),
    **tuning: Any,
) -> Sync:
    """`streams` with a budget of 100,000 bytes, spilling into `directory`."""
    return make_sync(
        fake,
        clock,
        catalog(*streams),
        buffer_budget=100_000,
        spill_directory=str(directory),
        **tuning,
    )


def test_memory_pressure_spills_to_disk_and_each_stream_keeps_one_object(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    clock = Clock()
    sync = spilling_sync(fake, clock, tmp_path)
    seen: list[tuple[list[str], list[str], int]] = []

    def in_memory() -> int:
        return sum(writer.buffered for writer in sync._router.writers())

    look = Do(lambda: seen.append((fake.keys(), os.listdir(tmp_path), in_memory())))
    steps: list[Step] = [
        *OVER_BUDGET[:2],  # users, the largest buffer, goes to disk
        look,
        [record("users", 6, 60_000), state("users", 6)],  # over again: users again
        look,
        Quiet(),
    ]
    outcome = drive(sync, clock, fake, steps)
    assert outcome.error is None
    # Nothing completed early: every state waits for the end (or flush_interval_seconds).
    end = len(steps)
    assert outcome.lines == [
        (end, released("users", 1, 1)),
        (end, released("orders", 2, 1)),
        (end, released("users", 6, 1)),
    ]
    # No object yet, no file to see (spills are unnamed), and only orders' 40,560 bytes in memory.
    assert seen == [([], [], 40_560), ([], [], 40_560)]
    assert calls(fake, "PutObject") == [("PutObject", key("users")), ("PutObject", key("orders"))]
    assert ids(fake, key("users")) == [1, 6]
    assert ids(fake, key("orders")) == [2, 3, 4, 5]
    assert messages(caplog_airbyte, logging.INFO)[0] == (
        "Stream buffers hold more than 0.09537 MiB: spilling the largest to "
        f"{tmp_path} (at most 1024 MiB there) so that every stream keeps one object open"
    )
    # users' 60,140 bytes twice; orders' buffer never was the largest.
    assert sync._memory.spilled_total == 2 * 60_140
    assert "Stream buffers spilled to local disk: 0.1 MB in all, each read back once" in (
        messages(caplog_airbyte, logging.INFO)
    )
    assert not messages(caplog_airbyte, logging.WARNING)


def test_a_spilled_buffer_ships_its_parts_in_order(fake: FakeS3Client, tmp_path: Path) -> None:
    clock = Clock()
    sync = make_sync(
        fake,
        clock,
        catalog("users"),
        file_size_mb=16,
        buffer_budget=1_000_000,
        spill_directory=str(tmp_path),
    )
    # 12 records of 100 kB a batch: each batch goes to disk; the fifth passes the part size.
    batches: list[Step] = [
        [record("users", number, BIG) for number in range(first, first + 12)]
        for first in range(1, 61, 12)
    ]
    outcome = drive(sync, clock, fake, [*batches, [state("users", 60)], Quiet()])
    assert outcome.error is None
    assert outcome.lines == [(7, released("users", 60, 60))]
    assert calls(fake, "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload") == [
        ("CreateMultipartUpload", key("users")),
        ("UploadPart", key("users")),  # disk then memory, during the fifth batch
        ("UploadPart", key("users")),
        ("CompleteMultipartUpload", key("users")),
    ]
    assert ids(fake, key("users")) == list(range(1, 61))
    assert os.listdir(tmp_path) == []


# Three streams over the budget at once: two spills bring the buffers under half of it.
THREE_OVER_BUDGET: list[Step] = [
    [
        *(record("users", 1, 40_000), state("users", 1)),
        *(record("orders", 2, 40_000), state("orders", 2)),
        *(record("events", 3, 30_000), state("events", 3)),
    ],
    Quiet(),
]
THREE_STREAMS = ("users", "orders", "events")
TWO_COMPLETED_EARLY = [
    (1, released("users", 1, 1)),
    (1, released("orders", 2, 1)),
    (2, released("events", 3, 1)),
]


@pytest.mark.parametrize(
    ("spill_files", "released_lines"),
    [
        pytest.param(None, [(2, line) for _, line in TWO_COMPLETED_EARLY], id="files-to-spare"),
        # users spills; orders and events would need a second file: the relief completes the
        # objects opened earliest instead (users, then orders).
        pytest.param(1, TWO_COMPLETED_EARLY, id="one-file-at-most"),
    ],
)
def test_spill_files_open_at_once_are_capped(
    fake: FakeS3Client,
    tmp_path: Path,
    spill_files: int | None,
    released_lines: list[tuple[int, bytes]],
) -> None:
    clock = Clock()
    sync = spilling_sync(fake, clock, tmp_path, THREE_STREAMS, spill_files=spill_files)
    outcome = drive(sync, clock, fake, THREE_OVER_BUDGET)
    assert outcome.error is None
    assert outcome.lines == released_lines
    assert sync._memory.spilled_total == (80_280 if spill_files is None else 40_140)
    assert [ids(fake, key(name)) for name in THREE_STREAMS] == [[1], [2], [3]]


def _is_open(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return False
    return True


def test_out_of_file_descriptors_a_spill_waits_and_objects_complete(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    clock = Clock()
    sync = spilling_sync(
        fake, clock, tmp_path, THREE_STREAMS, spill_files=100
    )  # not the cap: the process itself runs out
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A new descriptor takes the lowest free number: with the limit at the second free number,
    # exactly one more file opens.
    free = list(itertools.islice((n for n in itertools.count() if not _is_open(n)), 2))
    resource.setrlimit(resource.RLIMIT_NOFILE, (free[1], hard))
    try:
        outcome = drive(sync, clock, fake, THREE_OVER_BUDGET)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert outcome.error is None
    assert outcome.lines == TWO_COMPLETED_EARLY
    assert [ids(fake, key(name)) for name in THREE_STREAMS] == [[1], [2], [3]]
    assert messages(caplog_airbyte, logging.WARNING) == [
        "Could not open a spill file (Too many open files): completing the objects opened "
        "earliest while the process is short of file descriptors, which makes more, smaller "
        "objects. Raise the open-file limit (ulimit -n, or the container's nofile limit)."
    ]


def test_a_spilled_object_still_completes_on_the_flush_interval(
    fake: FakeS3Client, tmp_path: Path
) -> None:
    clock = Clock()
    sync = spilling_sync(fake, clock, tmp_path)
    steps: list[Step] = [*OVER_BUDGET[:2], Quiet(59.0), Quiet(1.0), Quiet()]
    outcome = drive(sync, clock, fake, steps)
    assert outcome.error is None
    # 60 s after the users state its spilled object completes; then the orders state is the
    # oldest held, 60 s old too, and its object completes on the next tick.
    assert outcome.lines == [(4, released("users", 1, 1)), (5, released("orders", 2, 1))]
    assert ids(fake, key("users")) == [1]


# --- A bucket that fails -----------------------------------------------------------------------

# One stream, three objects: small (PutObject), multipart (two parts), small again.
KEY1, KEY2, KEY3 = key("users"), key("users", MS0 + 60_000), key("users", MS0 + 120_000)
THREE_OBJECTS: list[Step] = [
    [record("users", 1), state("users", 1)],
    Quiet(60.0),
    Quiet(),
    [*big_records("users", 100), state("users", 2)],  # part 1 goes during the batch
    Quiet(60.0),  # flush: part 2 and CompleteMultipartUpload
    Quiet(),
    [record("users", 3), state("users", 3)],
    Quiet(60.0),
    Quiet(),
]
ALL_RELEASED = [
    (2, released("users", 1, 1)),
    (5, released("users", 2, 56)),
    (8, released("users", 3, 1)),
]


def test_three_objects_without_failures(fake: FakeS3Client) -> None:
    clock = Clock()
    outcome = drive(
        make_sync(fake, clock, catalog("users"), file_size_mb=16), clock, fake, THREE_OBJECTS
    )
    assert outcome.error is None
    assert outcome.lines == ALL_RELEASED
    assert fake.keys() == [KEY1, KEY2, KEY3]
    body = fake.objects[KEY2].body
    assert fake.objects[KEY2].etag == multipart_etag([body[: 5 << 20], body[5 << 20 :]])
    assert ids(fake, KEY2) == list(range(100, 156))
    assert calls(fake, "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload") == [
        ("CreateMultipartUpload", KEY2),
        ("UploadPart", KEY2),
        ("UploadPart", KEY2),
        ("CompleteMultipartUpload", KEY2),
    ]


FAILURES = [
    # (operation, nth call, error, code, action)
    pytest.param(
        "UploadPart", 1, lambda: client_error("AccessDenied", 403, "UploadPart"),
        "AccessDenied", f"s3:PutObject (part 1) on s3://bucket/{KEY2}", id="part-1-denied",
    ),
    pytest.param(
        "UploadPart", 2, lambda: EndpointConnectionError(endpoint_url=ENDPOINT),
        "EndpointUnreachable", f"s3:PutObject (part 2) on s3://bucket/{KEY2}",
        id="part-2-unreachable",
    ),
    pytest.param(
        "CompleteMultipartUpload", 1,
        lambda: client_error("InternalError", 500, "CompleteMultipartUpload"),
        "InternalError", f"s3:PutObject (CompleteMultipartUpload) on s3://bucket/{KEY2}",
        id="complete-fails",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("operation", "nth", "error", "code", "action"), FAILURES)
def test_a_failing_multipart_upload_fails_the_sync_and_is_aborted(
    fake: FakeS3Client,
    caplog_airbyte: pytest.LogCaptureFixture,
    operation: str,
    nth: int,
    error: Callable[[], Exception],
    code: str,
    action: str,
) -> None:
    clock = Clock()
    fake.fail(operation, error, nth=nth)
    sync = make_sync(fake, clock, catalog("users"), file_size_mb=16)
    outcome = drive(sync, clock, fake, THREE_OBJECTS)
    failure = storage_error(outcome).failure
    assert (failure.code, failure.action) == (code, action)
    assert outcome.lines == ALL_RELEASED[:1]  # nothing after the last durable state
    assert fake.keys() == [KEY1]  # no object for the failed upload
    assert fake.open_uploads() == []  # and no upload left open
    assert messages(caplog_airbyte, logging.INFO)[-1] == "Sync failed: 1 open uploads were aborted"
    assert calls(fake, "AbortMultipartUpload") == [("AbortMultipartUpload", KEY2)]


def test_a_refused_create_leaves_no_upload_to_report(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture
) -> None:
    # S3 answered the only attempt with an error: no upload can exist, so none "may stay open".
    clock = Clock()
    refused = lambda: client_error("AccessDenied", 403, "CreateMultipartUpload")  # noqa: E731
    fake.fail("CreateMultipartUpload", refused)
    sync = make_sync(fake, clock, catalog("users"), file_size_mb=16)
    outcome = drive(sync, clock, fake, THREE_OBJECTS)
    failure = storage_error(outcome).failure
    assert (failure.code, failure.action) == (
        "AccessDenied",
        f"s3:PutObject (CreateMultipartUpload) on s3://bucket/{KEY2}",
    )
    assert outcome.lines == ALL_RELEASED[:1]
    assert (fake.keys(), fake.open_uploads()) == ([KEY1], [])
    assert messages(caplog_airbyte, logging.INFO)[-1] == "Sync failed: 0 open uploads were aborted"


def test_a_failing_put_object_fails_the_sync(fake: FakeS3Client) -> None:
    clock = Clock()
    fake.fail("PutObject", lambda: client_error("SlowDown", 503, "PutObject"), after=1)
    outcome = drive(
        make_sync(fake, clock, catalog("users"), file_size_mb=16), clock, fake, THREE_OBJECTS
    )
    failure = storage_error(outcome).failure
    assert (failure.code, failure.action) == ("SlowDown", f"s3:PutObject on s3://bucket/{KEY3}")
    assert not failure.is_config_error
    assert outcome.lines == ALL_RELEASED[:2]
    assert fake.keys() == [KEY1, KEY2]


def test_an_unreachable_bucket_from_the_start_is_a_config_error(fake: FakeS3Client) -> None:
    clock = Clock()
    fake.fail("PutObject", lambda: EndpointConnectionError(endpoint_url=ENDPOINT))
    outcome = drive(make_sync(fake, clock, catalog("users")), clock, fake, THREE_OBJECTS[:3])
    failure = storage_error(outcome).failure
    assert failure.code == "EndpointUnreachable"
    assert failure.is_config_error  # S3 never answered: the endpoint or network settings
    assert ENDPOINT in failure.detail
    assert outcome.lines == []


# --- S3 executed the call, but its answer was lost ----------------------------------------------

SMALL_OBJECT: list[Step] = [[record("users", 1), state("users", 1)], Quiet(60.0), Quiet()]


def test_put_object_executed_then_precondition_failed_is_kept(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    lost = lambda: client_error("PreconditionFailed", 412, "PutObject")  # noqa: E731
    fake.fail("PutObject", lost, nth=1, executed=True)
    outcome = drive(make_sync(fake, clock, catalog("users")), clock, fake, SMALL_OBJECT)
    assert outcome.error is None
    assert outcome.lines == [(2, released("users", 1, 1))]
    assert fake.keys() == [KEY1]
    assert ids(fake, KEY1) == [1]
    # Confirmed by listing the key: exactly our size and MD5.
    assert calls(fake, "PutObject", "ListObjectsV2") == [
        ("PutObject", KEY1),
        ("ListObjectsV2", KEY1),
    ]
    assert f"PutObject of s3://bucket/{KEY1} was retried after S3 stored it: kept" in messages(
        caplog_airbyte, logging.INFO
    )


def test_someone_elses_object_at_our_key_is_never_replaced(fake: FakeS3Client) -> None:
    clock = Clock()
    fake.seed(KEY1, b"not ours\n")
    outcome = drive(make_sync(fake, clock, catalog("users")), clock, fake, SMALL_OBJECT)
    failure = storage_error(outcome).failure
    assert (failure.code, failure.action) == (
        "PreconditionFailed",
        f"s3:PutObject on s3://bucket/{KEY1}",
    )
    assert outcome.lines == []
    assert fake.objects[KEY1].body == b"not ours\n"


MULTIPART_OBJECT: list[Step] = [
    [*big_records("users", 100), state("users", 1)],
    Quiet(60.0),
    Quiet(),
]


@pytest.mark.parametrize(("code", "status"), [("NoSuchUpload", 404), ("PreconditionFailed", 412)])
def test_complete_executed_then_failed_is_kept(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture, code: str, status: int
) -> None:
    clock = Clock()
    lost = lambda: client_error(code, status, "CompleteMultipartUpload")  # noqa: E731
    fake.fail("CompleteMultipartUpload", lost, nth=1, executed=True)
    outcome = drive(
        make_sync(fake, clock, catalog("users"), file_size_mb=16), clock, fake, MULTIPART_OBJECT
    )
    assert outcome.error is None
    assert outcome.lines == [(2, released("users", 1, 56))]
    assert fake.keys() == [KEY1]
    assert fake.objects[KEY1].etag.endswith("-2")
    assert fake.open_uploads() == []
    assert calls(fake, "CompleteMultipartUpload", "ListObjectsV2") == [
        ("CompleteMultipartUpload", KEY1),
        ("ListObjectsV2", KEY1),
    ]
    assert (
        f"CompleteMultipartUpload of s3://bucket/{KEY1} was retried after S3 completed it: kept"
        in messages(caplog_airbyte, logging.INFO)
    )


def test_complete_refused_for_someone_elses_object_fails_and_aborts(fake: FakeS3Client) -> None:
    clock = Clock()
    fake.seed(KEY1, b"not ours\n")
    outcome = drive(
        make_sync(fake, clock, catalog("users"), file_size_mb=16), clock, fake, MULTIPART_OBJECT
    )
    assert storage_error(outcome).failure.code == "PreconditionFailed"
    assert outcome.lines == []
    assert fake.objects[KEY1].body == b"not ours\n"
    assert fake.open_uploads() == []


def test_a_retried_create_aborts_the_orphan_upload_and_completes_ours(fake: FakeS3Client) -> None:
    clock = Clock()
    # Another upload whose key starts with ours (upload-1) is not ours to abort.
    fake.create_multipart_upload(Bucket="bucket", Key=KEY1 + ".tmp")
    fake.retry_next_create(1)  # upload-2 is the orphan, upload-3 ours
    outcome = drive(
        make_sync(fake, clock, catalog("users"), file_size_mb=16), clock, fake, MULTIPART_OBJECT
    )
    assert outcome.error is None
    assert outcome.lines == [(2, released("users", 1, 56))]
    assert fake.keys() == [KEY1]
    assert ids(fake, KEY1) == list(range(100, 156))
    assert fake.open_uploads() == [(KEY1 + ".tmp", "upload-1")]
    assert calls(fake, "ListMultipartUploads", "AbortMultipartUpload") == [
        ("ListMultipartUploads", KEY1),
        ("AbortMultipartUpload", KEY1),
    ]


# --- Cancellation --------------------------------------------------------------------------------


def _cancel_once(*started: threading.Event) -> Do:
    def cancel() -> None:
        for event in started:
            assert event.wait(WAIT)
        raise Cancelled("cancelled by signal SIGTERM")

    return Do(cancel)


def test_cancel_aborts_the_open_uploads(fake: FakeS3Client) -> None:
    clock = Clock()
    held = fake.block("UploadPart")
    sync = make_sync(fake, clock, catalog("users"), file_size_mb=16, abort_seconds=0.5)
    steps: list[Step] = [[record("users", 0), state("users", 0), *big_records("users", 100)]]
    started = time.monotonic()
    outcome = drive(sync, clock, fake, [*steps, _cancel_once(held.entered)])
    assert isinstance(outcome.error, Cancelled)
    assert str(outcome.error) == "cancelled by signal SIGTERM; 1 open uploads were aborted"
    assert time.monotonic() - started < 2.0
    assert outcome.lines == []
    assert fake.open_uploads() == []
    assert fake.keys() == []


def test_a_cancel_while_the_finished_sync_logs_its_summary_is_not_a_failure(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture
) -> None:
    # SIGTERM's handler raises Cancelled wherever the main thread is: here, in a summary line.
    class CancelOnSummary(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Stream users:"):
                raise Cancelled("cancelled by signal SIGTERM")

    handler = CancelOnSummary()
    logging.getLogger("airbyte").addHandler(handler)
    try:
        clock = Clock()
        sync = make_sync(fake, clock, catalog("users"), write_manifest=True)
        outcome = drive(sync, clock, fake, [[record("users", 1), state("users", 1)]])
    finally:
        logging.getLogger("airbyte").removeHandler(handler)
    assert outcome.error is None
    assert [line for _, line in outcome.lines] == [released("users", 1, 1)]
    assert calls(fake, "AbortMultipartUpload") == []
    assert fake.objects[key("users")].body.count(b"\n") == 1
    assert messages(caplog_airbyte, logging.INFO)[-1] == (
        "Cancelled after the sync had finished: nothing was lost"
    )


def test_cancel_during_create_reports_an_upload_that_may_stay_open(fake: FakeS3Client) -> None:
    # The create is on its way: S3 may open an upload whose id the connector never learns.
    clock = Clock()
    held = fake.block("CreateMultipartUpload")
    sync = make_sync(fake, clock, catalog("users"), file_size_mb=16, abort_seconds=0.5)
    steps: list[Step] = [big_records("users", 100), _cancel_once(held.entered)]
    outcome = drive(sync, clock, fake, steps)
    assert isinstance(outcome.error, Cancelled)
    assert str(outcome.error) == (
        "cancelled by signal SIGTERM; 0 open uploads were aborted; 1 could not be aborted in "
        f"time and may stay open (s3://bucket/{KEY1}). To clean up: {LIFECYCLE_ADVICE}"
    )
    assert not calls(fake, "AbortMultipartUpload")


def test_cancel_during_create_waits_for_its_answer_and_aborts_what_it_opened(
    fake: FakeS3Client,
) -> None:
    # An orchestrator's SIGTERM often lands while a stream's upload is being created: the abort
    # waits for S3's answer (within the abort grace) instead of reporting the upload as open.
    clock = Clock()
    held = fake.block("CreateMultipartUpload")
    sync = make_sync(fake, clock, catalog("users"), file_size_mb=16, abort_seconds=5)

    def cancel_then_answer() -> None:
        assert held.entered.wait(WAIT)
        assert held.release is not None
        threading.Timer(0.2, held.release.set).start()  # S3 answers during the abort
        raise Cancelled("cancelled by signal SIGTERM")

    started = time.monotonic()
    outcome = drive(sync, clock, fake, [big_records("users", 100), Do(cancel_then_answer)])
    assert isinstance(outcome.error, Cancelled)
    assert str(outcome.error) == "cancelled by signal SIGTERM; 1 open uploads were aborted"
    assert time.monotonic() - started < 2.0  # the answer, not the whole grace
    assert fake.open_uploads() == []
    # (The part task that asked for the create goes on with its part, before or after the abort.)
    assert calls(fake, "CreateMultipartUpload", "AbortMultipartUpload") == [
        ("CreateMultipartUpload", KEY1),
        ("AbortMultipartUpload", KEY1),
    ]


def test_an_upload_aborted_before_its_create_started_never_opens_one(fake: FakeS3Client) -> None:
    bucket = Bucket(cast(Any, fake), "bucket")
    upload = ObjectUpload(bucket, KEY1, "application/jsonl", {})
    assert abort_uploads([upload], 1.0).describe() == "0 open uploads were aborted"
    with pytest.raises(UploadAborted, match="was aborted"):
        upload.write(b"x" * 10)  # a part task already running when the sync was cancelled
    assert fake.calls == []


class _HeldClient:
    """The fake through another client whose calls of `operation` wait for `release`."""

    def __init__(self, fake: FakeS3Client, operation: str) -> None:
        self._fake, self._operation = fake, operation
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._fake, name)
        if name != self._operation:
            return attribute

        def held(**request: Any) -> Any:
            self.release.wait(WAIT)
            return attribute(**request)

        return held


def test_an_abort_during_a_retried_create_aborts_the_uploads_of_its_earlier_attempts(
    fake: FakeS3Client,
) -> None:
    # botocore retried the create after S3 executed it: two uploads are open, and the create's
    # own thread is still cleaning up the extra one (slowly: its client's list call is held).
    fake.retry_next_create(1)
    create = fake.block("CreateMultipartUpload")
    worker_client = _HeldClient(fake, "list_multipart_uploads")
    bucket = Bucket(cast(Any, worker_client), "bucket", make_quick_client=lambda: cast(Any, fake))
    upload = ObjectUpload(bucket, KEY1, "application/jsonl", {})
    part_errors: list[BaseException] = []

    def send_part() -> None:
        try:
            upload.write(b"x")
        except StorageError as error:
            part_errors.append(error)

    part_task = threading.Thread(target=send_part)
    part_task.start()
    assert create.entered.wait(WAIT)
    assert create.release is not None
    threading.Timer(0.2, create.release.set).start()  # S3 answers during the abort
    outcome = abort_uploads([upload], 5.0)
    assert outcome.describe() == "1 open uploads were aborted"
    assert fake.open_uploads() == []  # the earlier attempt's upload too
    worker_client.release.set()
    part_task.join(WAIT)
    assert [error.failure.code for error in part_errors] == [
        "NoSuchUpload"
    ]  # the part's upload is gone


def test_cancel_reports_the_uploads_it_could_not_abort_in_time(fake: FakeS3Client) -> None:
    clock = Clock()
    users = fake.block("UploadPart", key="users/")
    orders = fake.block("UploadPart", key="orders/")
    fake.block("AbortMultipartUpload", key="orders/")  # S3 does not answer in time
    sync = make_sync(
        fake, clock, catalog("users", "orders"), 16, upload_workers=2, abort_seconds=0.5
    )
    steps: list[Step] = [
        [*big_records("users", 100), *big_records("orders", 200)],
        _cancel_once(users.entered, orders.entered),
    ]
    started = time.monotonic()
    outcome = drive(sync, clock, fake, steps)
    elapsed = time.monotonic() - started
    assert isinstance(outcome.error, Cancelled)
    assert str(outcome.error) == (
        "cancelled by signal SIGTERM; 1 open uploads were aborted; 1 could not be aborted in "
        f"time and may stay open (s3://bucket/{key('orders')}). To clean up: {LIFECYCLE_ADVICE}"
    )
    assert 0.5 <= elapsed < 2.0  # within the abort grace, not after the stuck abort
    assert [open_key for open_key, _ in fake.open_uploads()] == [key("orders")]


# --- Generations -----------------------------------------------------------------------------


def test_every_object_of_a_generation_has_its_marker_written_first(fake: FakeS3Client) -> None:
    clock = Clock()
    sync = make_sync(fake, clock, catalog("users", generation_id=7), file_size_mb=16)
    outcome = drive(sync, clock, fake, THREE_OBJECTS[:6])
    assert outcome.error is None
    assert outcome.lines == ALL_RELEASED[:2]
    writes = ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
    assert calls(fake, *writes) == [
        ("PutObject", marker("users", 7, KEY1)),
        ("PutObject", KEY1),
        # As the object opens: before any of its bytes, and long before it exists.
        ("PutObject", marker("users", 7, KEY2)),
        ("CreateMultipartUpload", KEY2),
        ("UploadPart", KEY2),
        ("UploadPart", KEY2),
        ("CompleteMultipartUpload", KEY2),
    ]
    assert fake.keys() == [marker("users", 7, KEY1), marker("users", 7, KEY2), KEY1, KEY2]
    assert fake.objects[marker("users", 7, KEY1)].body == b""
    for object_key in (KEY1, KEY2):
        assert fake.objects[object_key].attrs["Metadata"] == {"ab-generation-id": "7"}
    assert not calls(fake, "ListObjectsV2", "DeleteObjects")  # an append keeps everything


# Earlier syncs' objects in the bucket: recorded generations 0, 1 and 3, one with no recorded
# generation, and keys that are never the stream's to remove.
GEN0 = "users/2023_01_01_1672531200000_0.jsonl"
GEN1 = "users/2023_02_01_1675209600000_0.jsonl"
GEN3 = "users/2023_03_01_1677628800000_0.jsonl"
UNRECORDED = "users/2022_12_01_1669852800000_0.jsonl"
NEIGHBOURS = [
    "users_archive/2023_01_01_1672531200000_0.jsonl",
    marker("users_archive", 0, "2023_01_01_1672531200000_0.jsonl"),
    "users/sub/2023_01_01_1672531200000_0.jsonl",
    "users/README.txt",
]
MARKERS = {0: marker("users", 0, GEN0), 1: marker("users", 1, GEN1), 3: marker("users", 3, GEN3)}
EARLIER = [GEN0, GEN1, GEN3, UNRECORDED, *MARKERS.values(), *NEIGHBOURS]

REMOVALS = [
    # (catalog, keys removed, keys added, warning)
    pytest.param(
        catalog("users", generation_id=5, minimum_generation_id=0), [],
        [KEY1, marker("users", 5, KEY1)], None, id="append-5-min-0-keeps-all",
    ),
    pytest.param(
        catalog("users", generation_id=1, minimum_generation_id=1), [GEN0, MARKERS[0], UNRECORDED],
        [KEY1, marker("users", 1, KEY1)],
        "Stream users (sync mode append): removing 2 objects (1 with no recorded generation) "
        "from s3://bucket/users/ because the catalog sets minimum_generation_id == "
        "generation_id == 1, a truncate refresh: data of earlier generations must go.",
        id="pyairbyte-append-1-1",
    ),
    pytest.param(
        catalog("users", mode="overwrite", generation_id=3),
        [GEN0, MARKERS[0], GEN1, MARKERS[1], UNRECORDED], [KEY1, marker("users", 3, KEY1)], None,
        id="overwrite-3",
    ),
    # Without generation ids the markers are not even listed: those of removed objects stay.
    pytest.param(
        catalog("users", mode="overwrite"), [GEN0, GEN1, GEN3, UNRECORDED], [KEY1], None,
        id="overwrite-without-ids",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("streams", "removed", "added", "warning"), REMOVALS)
def test_earlier_objects_removed_after_a_successful_sync(
    fake: FakeS3Client,
    caplog_airbyte: pytest.LogCaptureFixture,
    streams: dict[str, Any],
    removed: list[str],
    added: list[str],
    warning: str | None,
) -> None:
    for earlier in EARLIER:
        fake.seed(earlier, b"{}\n")
    clock = Clock()
    outcome = drive(
        make_sync(fake, clock, streams), clock, fake, [[record("users", 1), state("users", 1)]]
    )
    assert outcome.error is None
    assert outcome.lines == [(1, released("users", 1, 1))]
    assert fake.keys() == sorted(set(EARLIER) - set(removed) | set(added))
    assert messages(caplog_airbyte, logging.WARNING) == ([warning] if warning else [])


def test_a_failed_sync_removes_nothing(fake: FakeS3Client) -> None:
    for earlier in EARLIER:
        fake.seed(earlier, b"{}\n")
    fake.fail("PutObject", lambda: client_error("AccessDenied", 403, "PutObject"), key="users/")
    clock = Clock()
    streams = catalog("users", mode="overwrite", generation_id=3)
    outcome = drive(
        make_sync(fake, clock, streams), clock, fake, [[record("users", 1), state("users", 1)]]
    )
    assert storage_error(outcome).failure.code == "AccessDenied"
    assert fake.keys() == sorted([*EARLIER, marker("users", 3, KEY1)])
    assert not calls(fake, "DeleteObjects")


def test_the_fake_answers_as_s3_does(fake: FakeS3Client) -> None:
    # What the "executed then failed" checks and the removal rely on.
    answer = fake.put_object(Bucket="bucket", Key="users/a", Body=b"abc")
    assert answer["ETag"] == f'"{md5(b"abc")}"'
    fake.seed("users/sub/b")
    bucket = Bucket(cast(Any, fake), "bucket")
    assert list(bucket.list_keys("users/", delimiter="/")) == ["users/a"]
    assert bucket.holds("users/a", 3, md5(b"abc"))
    assert bucket.region() == "us-east-1"
    assert Bucket(cast(Any, FakeS3Client(region="eu-west-1")), "bucket").region() == "eu-west-1"
    with pytest.raises(StorageError) as raised:
        Bucket(cast(Any, fake), "other").region()
    assert raised.value.failure.code == "NoSuchBucket"
    assert raised.value.failure.is_config_error


def _puts_move_the_clock(fake: FakeS3Client, clock: Clock, seconds: float) -> None:
    """Each PutObject moves `clock` by `seconds` (back, when negative) before it lands."""
    put_object = fake.put_object

    def put_object_and_move_the_clock(**request: Any) -> Any:
        clock.now += seconds
        return put_object(**request)

    fake.put_object = put_object_and_move_the_clock  # type: ignore[method-assign]


def test_the_last_log_says_where_the_sync_time_went(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture
) -> None:
    # 2.5 s of input; then the object and the manifest are written after the end of input, and
    # S3 takes 1.5 s for each PutObject.
    clock = Clock()
    _puts_move_the_clock(fake, clock, 1.5)
    sync = make_sync(fake, clock, catalog("users"), write_manifest=True)
    outcome = drive(sync, clock, fake, [[record("users", 1)], Quiet(2.5), [state("users", 1)]])
    assert outcome.error is None
    assert [line for _, line in outcome.lines] == [released("users", 1, 1)]
    (_, data_key), (_, manifest) = calls(fake, "PutObject")
    assert data_key == key("users") and manifest.startswith("_tarsal_manifests/")
    assert messages(caplog_airbyte, logging.INFO)[-1] == (
        "Sync finished in 5.5 s: input read in 2.5 s, then 3.0 s completing the last objects, "
        "removing earlier ones and writing the manifest"
    )


def test_the_timing_line_never_goes_negative_when_the_wall_clock_steps_back(
    fake: FakeS3Client, caplog_airbyte: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    _puts_move_the_clock(fake, clock, -10)
    sync = make_sync(fake, clock, catalog("users"))
    steps: list[Step] = [[record("users", 1)], Quiet(-5), [state("users", 1)]]
    assert drive(sync, clock, fake, steps).error is None
    assert messages(caplog_airbyte, logging.INFO)[-1] == (
        "Sync finished in 0.0 s: input read in 0.0 s, then 0.0 s completing the last objects, "
        "removing earlier ones and writing the manifest"
    )
