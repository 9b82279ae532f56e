"""StreamWriter: records handed over a block at a time land in objects exactly as if they had
come one by one (an object completes with the record that brings it to the target size)."""

from __future__ import annotations

import queue
import random
import zlib
from typing import Any, cast

import pytest
import zstandard

from destination_s3.config import Compression
from destination_s3.keys import KeyAllocator
from destination_s3.layout import stream_layout
from destination_s3.ledger import StateLedger
from destination_s3.storage import Bucket
from destination_s3.uploads import ByteBudget, UploadPool
from destination_s3.writer import Completion, StreamTarget, StreamWriter, WriterSettings
from unit_tests.fake_s3 import FakeS3Client

MIB = 1024 * 1024


def _writer(
    fake: FakeS3Client,
    file_size: int,
    compression: Compression = Compression.NONE,
    header: bytes = b"",
    completed: queue.SimpleQueue[Completion] | None = None,
) -> tuple[StreamWriter, UploadPool]:
    target = StreamTarget(
        name="users",
        namespace=None,
        layout=stream_layout(None, "", None, "", "users", "1"),
        header=header,
        sync_mode="append",
        truncate=False,
        generation_id=None,
        minimum_generation_id=0,
        markers_prefix="_tarsal_generations/users/",
    )
    extension = "jsonl" + compression.suffix
    settings = WriterSettings(5 * MIB, file_size, extension, "application/jsonl", compression)
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
        queue.SimpleQueue[Completion]() if completed is None else completed,
    )
    return writer, pool


def test_a_block_is_split_where_the_object_reaches_its_size() -> None:
    fake = FakeS3Client()
    writer, pool = _writer(fake, file_size=100)
    lines = [b"%02d-" % n + b"x" * 26 + b"\n" for n in range(10)]  # 30 bytes each
    writer.add_lines(lines[:2], first_record=0, emitted_at=[0, 1])
    # The 4th record reaches 100 bytes, then the 8th.
    writer.add_lines(lines[2:], first_record=2, emitted_at=list(range(2, 10)))
    writer.complete()
    pool.wait_idle()
    pool.shutdown()
    bodies = [fake.objects[key].body for key in sorted(fake.objects)]
    assert bodies == [b"".join(lines[0:4]), b"".join(lines[4:8]), b"".join(lines[8:])]
    assert writer.records_added == 10


def test_a_block_that_fits_is_one_append() -> None:
    fake = FakeS3Client()
    writer, pool = _writer(fake, file_size=10 * MIB)
    writer.add_lines([b"a\n", b"b\n"], first_record=0, emitted_at=[1, 1])
    assert (bytes(writer.buffer), writer.open_since_record) == (b"a\nb\n", 0)
    writer.add_lines([b"c\n"], first_record=7, emitted_at=[2])
    assert (bytes(writer.buffer), writer.open_since_record) == (b"a\nb\nc\n", 0)
    pool.shutdown()


def _decompress(compression: Compression, body: bytes) -> bytes:
    """The content of one gzip member / zstd frame that is the whole body."""
    if compression is Compression.GZIP:
        inflate = zlib.decompressobj(wbits=31)
        data = inflate.decompress(body)
    else:
        inflate = zstandard.ZstdDecompressor().decompressobj()
        data = inflate.decompress(body)
    assert inflate.eof and inflate.unused_data == b""
    return data


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_compressed_objects_complete_at_the_uncompressed_target_size(
    compression: Compression,
) -> None:
    fake, completed = FakeS3Client(), queue.SimpleQueue[Completion]()
    header = b"id,text\r\n"
    writer, pool = _writer(fake, MIB, compression, header, completed)
    lines = [b"%06d,%s\r\n" % (n, b"text " * (n % 40)) for n in range(30_000)]  # ~3.3 MiB
    for start in range(0, len(lines), 1000):
        batch = lines[start : start + 1000]
        writer.add_lines(batch, first_record=start, emitted_at=[0] * len(batch))
        assert len(writer.buffer) < 5 * MIB
    writer.complete()
    pool.wait_idle()
    pool.shutdown()

    keys = sorted(fake.objects)
    assert all(key.endswith(".jsonl" + compression.suffix) for key in keys)
    contents = [_decompress(compression, fake.objects[key].body) for key in keys]
    assert all(content.startswith(header) for content in contents)  # compressed like the rest
    assert b"".join(content[len(header) :] for content in contents) == b"".join(lines)
    longest = max(map(len, lines))
    assert len(contents) == 4
    for content in contents[:-1]:  # the target counts uncompressed bytes, header included
        assert MIB <= len(content) < MIB + longest
    # Every object is smaller than a part once compressed: one PutObject each, no multipart.
    assert [operation for operation, _ in fake.calls] == ["PutObject"] * 4
    reported = [completed.get_nowait() for _ in keys]
    assert [c.size for c in reported] == [len(fake.objects[key].body) for key in keys]
    assert [c.uncompressed_size for c in reported] == [len(content) for content in contents]
    assert [c.records for c in reported] == [len(c.splitlines()) - 1 for c in contents]


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_parts_are_full_parts_of_compressed_output(compression: Compression) -> None:
    fake = FakeS3Client()
    writer, pool = _writer(fake, 100 * MIB, compression)
    rng = random.Random(3)
    # Incompressible lines: 12 MiB in, about as much out, so the object needs three parts.
    lines = [rng.randbytes(4095) + b"\n" for _ in range(3072)]
    for start in range(0, len(lines), 100):
        batch = lines[start : start + 100]
        writer.add_lines(batch, first_record=start, emitted_at=[0] * len(batch))
    writer.complete()
    pool.wait_idle()
    pool.shutdown()

    (key,) = fake.objects
    stored = fake.objects[key]
    assert _decompress(compression, stored.body) == b"".join(lines)
    operations = [operation for operation, _ in fake.calls]
    parts = ["UploadPart"] * 3
    assert operations == ["CreateMultipartUpload", *parts, "CompleteMultipartUpload"]
    # The fake refuses a part under 5 MiB but the last (EntityTooSmall), as S3 does: compressed
    # output is buffered until a part is full, and the tail goes with the completion.
    assert stored.etag.endswith("-3")
    assert 10 * MIB < len(stored.body) < 15 * MIB
