"""What a benchmark run left in S3: objects, bytes, lines and records, checked as they are read.

:func:`count_bucket` reads every object of a bucket after a run (optionally keeping the bytes for
the upload bound); :class:`Drain` counts and deletes objects while a long run is still going.
Compressed objects (`.gz`: one gzip member, `.zst`: one zstd frame, as the connector writes them)
are decompressed as they stream in; lines, the CSV header and the final newline are checked on
the decompressed content, while the bytes kept for the bound are the stored (compressed) ones.
The server is the tests' :class:`integration_tests.s3_server.MotoServer`.
"""

from __future__ import annotations

import csv
import gzip
import io
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import zstandard

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from integration_tests.s3_server import MotoServer

READ_CHUNK = 8 << 20


@dataclass
class OutputCount:
    """What a run left in S3: objects, bytes, lines, and the lines that are CSV headers.

    `bytes` are the bytes stored in S3 (compressed, for `.gz` / `.zst` objects); `content_bytes`
    the bytes of the decompressed content (the same as `bytes` for uncompressed objects).
    """

    objects: int = 0
    bytes: int = 0
    content_bytes: int = 0
    lines: int = 0
    header_lines: int = 0
    # Objects per file-name extension (".jsonl", ".jsonl.gz", ...): the codec that was written.
    extensions: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.lines - self.header_lines

    def add(self, other: OutputCount) -> None:
        self.objects += other.objects
        self.bytes += other.bytes
        self.content_bytes += other.content_bytes
        self.lines += other.lines
        self.header_lines += other.header_lines
        for extension, objects in other.extensions.items():
            self.extensions[extension] = self.extensions.get(extension, 0) + objects
        self.problems.extend(other.problems)


def _is_header(first_line: bytes, columns: frozenset[str]) -> bool:
    cells = next(csv.reader([first_line.decode("utf-8", "replace")]), [])
    return columns <= set(cells)


def extension(key: str) -> str:
    """The extension of an object's file name, from its first dot: ".jsonl.gz"."""
    name = key.rpartition("/")[2]
    return "." + name.partition(".")[2] if "." in name else ""


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _StoredBytes(io.RawIOBase):
    """The object's bytes as stored, read chunk by chunk from the response body: each chunk is
    counted and written to `sink` as it arrives. `chunks()` yields them as they come; as a file
    (`read`), it feeds a decompressor."""

    def __init__(self, chunks: Iterator[bytes], sink: _Sink) -> None:
        super().__init__()
        self._chunks = chunks
        self._sink = sink
        self._pending = memoryview(b"")
        self.bytes = 0

    def _next_chunk(self) -> bytes | None:
        for chunk in self._chunks:
            if chunk:
                self.bytes += len(chunk)
                self._sink.write(chunk)
                return chunk
        return None

    def chunks(self) -> Iterator[bytes]:
        if self._pending:
            pending = bytes(self._pending)
            self._pending = memoryview(b"")
            yield pending
        while (chunk := self._next_chunk()) is not None:
            yield chunk

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            chunk = self._next_chunk()
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        memoryview(buffer).cast("B")[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def drain(self) -> None:
        """Read (count and save) whatever the decompressor left unread."""
        self._pending = memoryview(b"")
        while self._next_chunk() is not None:
            pass


class _NotOneFrame(Exception):
    """The object decompressed, but is not exactly one complete zstd frame."""


def _content_chunks(key: str, stored: _StoredBytes) -> Iterator[bytes]:
    """The object's content, decompressed by its extension, chunk by chunk."""
    if key.endswith(".gz"):
        # The gzip module checks the member's CRC32 and length, and raises on a truncated one.
        with gzip.GzipFile(fileobj=stored, mode="rb") as reader:
            while chunk := reader.read(READ_CHUNK):
                yield chunk
        stored.drain()
    elif key.endswith(".zst"):
        # Streaming; zstd verifies the frame's content checksum. A second frame matters: a reader
        # such as zstandard's `stream_reader` stops at the end of the first one by default.
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        after_frame = 0
        for chunk in stored.chunks():
            if decompressor.eof:
                after_frame += len(chunk)
            elif content := decompressor.decompress(chunk):
                yield content
        after_frame += len(decompressor.unused_data)
        if not decompressor.eof:
            raise _NotOneFrame("truncated zstd frame")
        if after_frame:
            raise _NotOneFrame(f"{after_frame} bytes after the first zstd frame")
    else:
        yield from stored.chunks()


def count_object(
    client: S3Client,
    bucket: str,
    key: str,
    header_columns: frozenset[str] | None,
    save_to: Path | None = None,
) -> OutputCount:
    """Stream one object: count its lines, optionally save its (stored) bytes. `.gz` and `.zst`
    objects are decompressed first. With `header_columns` (CSV) the first line must be a header
    naming at least those columns; it is not a record."""
    body: Any = client.get_object(Bucket=bucket, Key=key)["Body"]
    count = OutputCount(objects=1, extensions={extension(key): 1})
    if key.endswith(".parquet"):
        return _count_parquet(key, body.read(), count, save_to)
    first = True
    unreadable = False
    last_byte = b"\n"
    with save_to.open("wb") if save_to is not None else _NullFile() as sink:
        stored = _StoredBytes(body.iter_chunks(READ_CHUNK), sink)
        try:
            for chunk in _content_chunks(key, stored):
                if first:
                    first = False
                    if header_columns is not None:
                        if _is_header(chunk.partition(b"\n")[0], header_columns):
                            count.header_lines = 1
                        else:
                            count.problems.append(f"{key}: does not start with the CSV header")
                count.content_bytes += len(chunk)
                count.lines += chunk.count(b"\n")
                last_byte = chunk[-1:]
        except _NotOneFrame as exc:
            count.problems.append(f"{key}: {exc}")
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            count.problems.append(f"{key}: cannot decompress: {exc}")
            stored.drain()
            unreadable = True
        count.bytes = stored.bytes
    if unreadable:
        pass
    elif first:
        count.problems.append(f"{key}: empty object")
    elif last_byte != b"\n":
        count.problems.append(f"{key}: does not end with a newline")
    return count


def _count_parquet(
    key: str, stored: bytes, count: OutputCount, save_to: Path | None
) -> OutputCount:
    """A Parquet object: its rows are its records (read from the footer, which pyarrow checks);
    `content_bytes` is the uncompressed size of its row groups."""
    import pyarrow
    import pyarrow.parquet

    count.bytes = len(stored)
    if save_to is not None:
        save_to.write_bytes(stored)
    try:
        metadata = pyarrow.parquet.ParquetFile(pyarrow.BufferReader(stored)).metadata
    except (OSError, pyarrow.ArrowException) as exc:
        count.problems.append(f"{key}: not a readable Parquet file: {exc}")
        return count
    count.lines = metadata.num_rows
    count.content_bytes = sum(
        metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups)
    )
    return count


class _NullFile:
    def __enter__(self) -> _NullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)


def data_keys(server: MotoServer, bucket: str) -> list[str]:
    """The bucket's data objects: not the connector's bookkeeping under `_tarsal_*` prefixes
    (generation markers), which readers skip too."""
    return [key for key in server.list_keys(bucket) if "/_tarsal_" not in f"/{key}"]


def count_bucket(
    server: MotoServer,
    bucket: str,
    header_columns: frozenset[str] | None,
    save_dir: Path | None = None,
) -> tuple[OutputCount, list[tuple[str, Path]]]:
    """Count every object; with `save_dir`, also keep each object's bytes there (for the bound)."""
    client = server.admin_client("s3")
    total = OutputCount()
    saved: list[tuple[str, Path]] = []
    for index, key in enumerate(data_keys(server, bucket)):
        path = save_dir / f"{index:06d}.part" if save_dir is not None else None
        total.add(count_object(client, bucket, key, header_columns, path))
        if path is not None:
            saved.append((key, path))
    return total, saved


class Drain:
    """Counts and deletes objects as they complete, so moto does not keep a large run in RAM.

    A background thread lists the bucket every `interval` seconds; `finish()` does a last pass
    after the connector has exited. Multipart uploads still in progress are not listed, so only
    finished objects are read and deleted.
    """

    def __init__(
        self,
        server: MotoServer,
        bucket: str,
        header_columns: frozenset[str] | None,
        interval: float = 2.0,
    ) -> None:
        self._server = server
        self._client = server.admin_client("s3")
        self._bucket = bucket
        self._header_columns = header_columns
        self._interval = interval
        self._stop = threading.Event()
        self._seen: set[str] = set()
        self.count = OutputCount()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="drain", daemon=True)
        self._thread.start()

    def _pass(self) -> None:
        for key in data_keys(self._server, self._bucket):
            if key in self._seen:
                continue
            self._seen.add(key)
            self.count.add(count_object(self._client, self._bucket, key, self._header_columns))
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self._pass()
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> OutputCount:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
        self._pass()
        return self.count
