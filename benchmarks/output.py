"""What a benchmark run left in S3: objects, bytes, lines and records, checked as they are read.

:func:`count_bucket` reads every object of a bucket after a run (optionally keeping the bytes for
the upload bound); :class:`Drain` counts and deletes objects while a long run is still going.
The server is the tests' :class:`integration_tests.s3_server.MotoServer`.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from integration_tests.s3_server import MotoServer

READ_CHUNK = 8 << 20


@dataclass
class OutputCount:
    """What a run left in S3: objects, bytes, lines, and the lines that are CSV headers."""

    objects: int = 0
    bytes: int = 0
    lines: int = 0
    header_lines: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.lines - self.header_lines

    def add(self, other: OutputCount) -> None:
        self.objects += other.objects
        self.bytes += other.bytes
        self.lines += other.lines
        self.header_lines += other.header_lines
        self.problems.extend(other.problems)


def _is_header(first_line: bytes, columns: frozenset[str]) -> bool:
    cells = next(csv.reader([first_line.decode("utf-8", "replace")]), [])
    return columns <= set(cells)


def count_object(
    client: S3Client,
    bucket: str,
    key: str,
    header_columns: frozenset[str] | None,
    save_to: Path | None = None,
) -> OutputCount:
    """Stream one object: count its lines, optionally save its bytes. With `header_columns` (CSV)
    the first line must be a header naming at least those columns; it is not a record."""
    body: Any = client.get_object(Bucket=bucket, Key=key)["Body"]
    count = OutputCount(objects=1)
    first = True
    last_byte = b"\n"
    with save_to.open("wb") if save_to is not None else _NullFile() as sink:
        for chunk in body.iter_chunks(READ_CHUNK):
            if first:
                first = False
                if header_columns is not None:
                    if _is_header(chunk.partition(b"\n")[0], header_columns):
                        count.header_lines = 1
                    else:
                        count.problems.append(f"{key}: does not start with the CSV header")
            count.bytes += len(chunk)
            count.lines += chunk.count(b"\n")
            last_byte = chunk[-1:]
            sink.write(chunk)
    if count.bytes == 0:
        count.problems.append(f"{key}: empty object")
    elif last_byte != b"\n":
        count.problems.append(f"{key}: does not end with a newline")
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
