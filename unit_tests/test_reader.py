"""LineBlocks: blocks of whole lines, whatever the chunk boundaries, and a tick when the pipe is
quiet."""

from __future__ import annotations

import fcntl
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from destination_s3 import reader
from destination_s3.reader import LineBlocks


class _Chunks:
    """A stream whose reads return exactly the given pieces, in order."""

    def __init__(self, pieces: Iterable[bytes], error: BaseException | None) -> None:
        self._pieces: Iterator[bytes] = iter(pieces)
        self._error = error

    def read(self, size: int = -1) -> bytes:
        return self.read1(size)

    def read1(self, size: int = -1) -> bytes:
        piece = next(self._pieces, None)
        if piece is not None:
            return piece
        if self._error is not None:
            raise self._error
        return b""


def chunks(pieces: Iterable[bytes], error: BaseException | None = None) -> BinaryIO:
    return cast(BinaryIO, _Chunks(pieces, error))


def _lines(blocks: Iterable[bytes], *, ticks: bool = False) -> list[bytes]:
    """The lines of the blocks, checking that no block splits a line: every block but the last
    ends with a newline."""
    blocks = list(blocks)
    for index, block in enumerate(blocks):
        # In-memory input never leaves the reader idle for seconds: a tick there means it is stuck.
        assert ticks or block != b"", "tick from a stream that had data"
        last = index == len(blocks) - 1
        assert last or not block or block.endswith(b"\n"), f"block {index} splits a line"
    return _expected(b"".join(blocks))


def _expected(text: bytes) -> list[bytes]:
    if not text:
        return []
    lines = text.split(b"\n")
    return lines[:-1] if text.endswith(b"\n") else lines


def test_lines_split_across_chunk_boundaries() -> None:
    pieces = [b"ab", b"c\nde", b"f\n", b"\n", b"gh", b"i", b"\nj"]
    assert _lines(LineBlocks(chunks(pieces), tick_seconds=5)) == [
        b"abc",
        b"def",
        b"",
        b"ghi",
        b"j",
    ]


@pytest.mark.parametrize(
    "text", [b"one\ntwo\n\nthree\n", b"a\nbb\nccc", b"\n\n", b"x", b"\nlead", b"long line here\n"]
)
def test_every_split_of_the_input_gives_the_same_lines(text: bytes) -> None:
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1):
            pieces = [piece for piece in (text[:first], text[first:second], text[second:]) if piece]
            assert _lines(LineBlocks(chunks(pieces), tick_seconds=5)) == _expected(text), pieces


def test_small_real_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "CHUNK_SIZE", 7)
    lines = [f"line {index} ".encode() * (index % 5) for index in range(300)]
    text = b"\n".join(lines) + b"\n"
    assert _lines(LineBlocks(io.BytesIO(text), tick_seconds=5)) == lines


def test_a_line_larger_than_the_chunk_size() -> None:
    huge = b"x" * (5 * reader.CHUNK_SIZE + 123)
    other = b"y" * (3 * reader.CHUNK_SIZE)
    text = b"first\n" + huge + b"\nshort\n" + other
    assert _lines(LineBlocks(io.BytesIO(text), tick_seconds=5)) == [
        b"first",
        huge,
        b"short",
        other,
    ]


def test_a_line_larger_than_the_chunk_size_from_a_real_file(tmp_path: Path) -> None:
    huge = b"z" * (4 * reader.CHUNK_SIZE + 7)
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"a\n" + huge + b"\nb\n" + huge)
    with path.open("rb") as stream:
        assert _lines(LineBlocks(stream, tick_seconds=5)) == [b"a", huge, b"b", huge]


def test_last_line_without_newline() -> None:
    assert _lines(LineBlocks(io.BytesIO(b"a\nb\nlast"), tick_seconds=5)) == [b"a", b"b", b"last"]


def test_empty_input_gives_no_lines() -> None:
    assert list(LineBlocks(io.BytesIO(b""), tick_seconds=5)) == []


def test_a_lone_newline_is_one_empty_line() -> None:
    assert _lines(LineBlocks(io.BytesIO(b"\n"), tick_seconds=5)) == [b""]


def test_carriage_returns_stay_in_the_line() -> None:
    assert _lines(LineBlocks(io.BytesIO(b"a\r\nb\r\n"), tick_seconds=5)) == [b"a\r", b"b\r"]


def test_read_error_reaches_the_consumer_after_the_lines_before_it() -> None:
    blocks = iter(LineBlocks(chunks([b"a\nb\n"], error=OSError("pipe broke")), tick_seconds=5))
    assert next(blocks) == b"a\nb\n"
    with pytest.raises(OSError, match="pipe broke"):
        next(blocks)


def test_tick_when_the_pipe_is_quiet_then_lines() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as pipe:
        batches = iter(LineBlocks(pipe, tick_seconds=0.05))
        try:
            # Nothing was written: the only thing the reader can hand over is a tick.
            assert next(batches) == b""
            assert next(batches) == b""
            os.write(write_fd, b'{"a":1}\n{"b":')
            os.write(write_fd, b"2}\nlast")
        finally:
            os.close(write_fd)
        rest = list(batches)
    assert _lines(rest, ticks=True) == [b'{"a":1}', b'{"b":2}', b"last"]


def test_a_chunk_ending_a_line_is_handed_over_without_a_copy() -> None:
    chunk = b"a\nb\n"
    [block] = LineBlocks(chunks([chunk]), tick_seconds=5)
    assert block is chunk


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are Linux's")
def test_a_pipe_on_stdin_is_widened_to_hold_a_whole_chunk() -> None:
    """With Linux's 64 KiB pipes a piped source arrived in 64 KiB blocks (sixteen times the
    per-block work); the reader asks for a pipe of one chunk, which the default limit allows."""
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    read_fd, write_fd = os.pipe()
    before = fcntl.fcntl(read_fd, fcntl.F_GETPIPE_SZ)
    with os.fdopen(read_fd, "rb") as pipe:
        try:
            blocks = iter(LineBlocks(pipe, tick_seconds=5))
            os.write(write_fd, b"x" * 200_000 + b"\n")
        finally:
            os.close(write_fd)
        assert [len(block) for block in blocks] == [200_001]
        expected = reader.CHUNK_SIZE if limit >= reader.CHUNK_SIZE else before
        assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) == expected


def test_a_regular_file_on_stdin_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"a\nb\n")
    with path.open("rb") as stream:
        assert list(LineBlocks(stream, tick_seconds=5)) == [b"a\nb\n"]
