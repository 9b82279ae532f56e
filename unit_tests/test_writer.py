"""StreamWriter: records handed over a block at a time land in objects exactly as if they had
come one by one (an object completes with the record that brings it to the target size)."""

from __future__ import annotations

import queue
from typing import Any, cast

from destination_s3.keys import KeyAllocator
from destination_s3.ledger import StateLedger
from destination_s3.storage import Bucket
from destination_s3.uploads import ByteBudget, UploadPool
from destination_s3.writer import Completion, StreamTarget, StreamWriter, WriterSettings
from unit_tests.fake_s3 import FakeS3Client

MIB = 1024 * 1024


def _writer(fake: FakeS3Client, file_size: int) -> tuple[StreamWriter, UploadPool]:
    target = StreamTarget(
        name="users",
        namespace=None,
        directory="users/",
        header=b"",
        sync_mode="append",
        truncate=False,
        generation_id=None,
        minimum_generation_id=0,
        markers_prefix="_tarsal_generations/users/",
    )
    settings = WriterSettings(5 * MIB, file_size, "jsonl", "application/jsonl")
    pool = UploadPool(1, ByteBudget(64 * MIB))
    clock = iter(range(1_000, 1_000_000))
    writer = StreamWriter(
        target,
        settings,
        Bucket(cast(Any, fake), "bucket"),
        pool,
        StateLedger(),
        KeyAllocator(),
        lambda: next(clock),
        queue.SimpleQueue[Completion](),
    )
    return writer, pool


def test_a_block_is_split_where_the_object_reaches_its_size() -> None:
    fake = FakeS3Client()
    writer, pool = _writer(fake, file_size=100)
    lines = [b"%02d-" % n + b"x" * 26 + b"\n" for n in range(10)]  # 30 bytes each
    writer.add_lines(lines[:2], first_record=0)
    writer.add_lines(lines[2:], first_record=2)  # the 4th record reaches 100 bytes, then 8th
    writer.complete()
    pool.wait_idle()
    pool.shutdown()
    bodies = [fake.objects[key].body for key in sorted(fake.objects)]
    assert bodies == [b"".join(lines[0:4]), b"".join(lines[4:8]), b"".join(lines[8:])]
    assert writer.records_added == 10


def test_a_block_that_fits_is_one_append() -> None:
    fake = FakeS3Client()
    writer, pool = _writer(fake, file_size=10 * MIB)
    writer.add_lines([b"a\n", b"b\n"], first_record=0)
    assert (bytes(writer.buffer), writer.open_since_record) == (b"a\nb\n", 0)
    writer.add_lines([b"c\n"], first_record=7)
    assert (bytes(writer.buffer), writer.open_since_record) == (b"a\nb\nc\n", 0)
    pool.shutdown()
