"""A moto S3 server on 127.0.0.1 for the benchmark, and the S3 reads that check a run's output."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY_ID = "AKIABENCHMARK0000000"
SECRET_ACCESS_KEY = "benchmark-secret-access-key-0000"
REGION = "us-east-1"
READ_CHUNK = 8 << 20


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _moto_server_command() -> list[str]:
    """The venv's `moto_server` script, next to this interpreter."""
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script)]
    found = shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]'")
    return [found]


class MotoServer:
    """`moto_server` as a subprocess on a free loopback port; `stop()` ends it."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*_moto_server_command(), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_CALL_RESET_API": "true"},
        )
        self._wait_ready()
        self.client = s3_client(self.endpoint)

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"moto_server did not answer on {self.endpoint}")

    def reset(self, bucket: str) -> None:
        """Drop everything moto holds, then create an empty `bucket`."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass
        self.client.create_bucket(Bucket=bucket)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def s3_client(endpoint: str, max_pool_connections: int = 16) -> S3Client:
    return boto3.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            region_name=REGION,
            max_pool_connections=max_pool_connections,
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )


def list_keys(client: S3Client, bucket: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every completed object, in key order."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            yield item["Key"], item["Size"]


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


def count_bucket(
    client: S3Client,
    bucket: str,
    header_columns: frozenset[str] | None,
    save_dir: Path | None = None,
) -> tuple[OutputCount, list[tuple[str, Path]]]:
    """Count every object; with `save_dir`, also keep each object's bytes there (for the bound)."""
    total = OutputCount()
    saved: list[tuple[str, Path]] = []
    for index, (key, _size) in enumerate(list_keys(client, bucket)):
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
        endpoint: str,
        bucket: str,
        header_columns: frozenset[str] | None,
        interval: float = 2.0,
    ) -> None:
        self._client = s3_client(endpoint)
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
        for key, _size in list(list_keys(self._client, self._bucket)):
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
