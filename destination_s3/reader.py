"""Reads stdin in the background and hands over blocks of whole lines.

A reader thread keeps the pipe drained while the main thread encodes and uploads, and the main
thread can wake up on a timer when the source is quiet (to flush on time and report progress).
A block is the bytes of one or more whole lines, as they came, each ending in a newline (but the
last line of the input, which may lack it): the main thread decodes a whole block in one call,
so lines are never split here.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

CHUNK_SIZE = 1 << 20
# At most this many chunks wait to be parsed: bounds memory when the connector is the slow side.
QUEUE_CHUNKS = 8


class LineBlocks:
    """Iterate over blocks of whole lines (bytes); an empty block means "no input for
    `tick_seconds`"."""

    def __init__(self, stream: BinaryIO, tick_seconds: float = 1.0) -> None:
        self._stream = stream
        self._tick_seconds = tick_seconds
        self._chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(QUEUE_CHUNKS)
        self._thread = threading.Thread(target=self._pump, name="stdin-reader", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            read = self._reader()
            while True:
                chunk = read(CHUNK_SIZE)
                if not chunk:
                    break
                self._chunks.put(chunk)
        except BaseException as exc:  # handed to the main thread, which reports it
            self._chunks.put(exc)
            return
        self._chunks.put(None)

    def _reader(self) -> Callable[[int], bytes]:
        # os.read on the file descriptor takes no lock of the buffered stdin object: a reader
        # thread blocked in it cannot hang or crash the interpreter's shutdown after a failure.
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            read1 = getattr(self._stream, "read1", None)
            return read1 if read1 is not None else self._stream.read
        _widen_pipe(fd)
        return lambda size: os.read(fd, size)

    def __iter__(self) -> Iterator[bytes]:
        # Pieces of a line that spans chunks; joined once, so a huge record costs one copy.
        partial: list[bytes | memoryview] = []
        while True:
            try:
                chunk = self._chunks.get(timeout=self._tick_seconds)
            except queue.Empty:
                yield b""
                continue
            if chunk is None:
                break
            if isinstance(chunk, BaseException):
                raise chunk
            end = chunk.rfind(b"\n") + 1
            if not end:
                partial.append(chunk)
                continue
            if partial:
                partial.append(memoryview(chunk)[:end])  # copied once, by the join
                yield b"".join(partial)
            else:
                yield chunk if end == len(chunk) else chunk[:end]
            partial = [chunk[end:]] if end < len(chunk) else []
        if partial:
            yield b"".join(partial)


def _widen_pipe(fd: int) -> None:
    """Let a pipe on stdin hold a whole chunk (Linux's default is 64 KiB).

    A read returns at most what the pipe holds, so with the default a source piped into the
    connector arrives in 64 KiB blocks: sixteen times the per-block work of a 1 MiB block (a
    queue hand-over, a scanner call, a join and an append per stream). Where the kernel refuses
    (another OS, a limit below 1 MiB in /proc/sys/fs/pipe-max-size), the pipe stays as it was.
    """
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, set_size, CHUNK_SIZE)
    except OSError:
        pass
