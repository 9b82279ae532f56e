"""PartBuffer: parts come out exactly as the bytes went in, whatever the chunk boundaries and
whatever went to a spill file on the way."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from destination_s3.part_buffer import PartBuffer
from destination_s3.spill import SpillFile


def test_parts_cut_across_chunks_in_order() -> None:
    buffer = PartBuffer()
    for chunk in (b"abc", b"", b"defg", b"h", b"ijklmn"):
        buffer.append(chunk)
    assert len(buffer) == 14
    assert buffer.take(5) == b"abcde"  # ends inside the second chunk
    assert len(buffer) == 9
    assert buffer.take(3) == b"fgh"  # starts in the rest of a split chunk, ends on a boundary
    assert bytes(buffer) == b"ijklmn"  # a look does not take
    assert buffer.take(2) == b"ij"
    assert buffer.take_all() == b"klmn"
    assert (len(buffer), bytes(buffer), buffer.take_all()) == (0, b"", b"")


def test_taking_more_than_is_held_takes_everything() -> None:
    buffer = PartBuffer()
    buffer.append(b"xyz")
    assert buffer.take(10) == b"xyz"
    assert len(buffer) == 0


def test_one_whole_chunk_is_handed_over_without_a_copy() -> None:
    chunk = bytes(range(256)) * 64
    buffer = PartBuffer()
    buffer.append(chunk)
    assert buffer.take_all() is chunk
    buffer.append(chunk)
    assert buffer.take(len(chunk)) is chunk


@pytest.mark.parametrize("spills", [False, True], ids=["in-memory", "with-spills"])
@pytest.mark.parametrize("seed", range(20))
def test_random_chunks_spills_and_parts_match_a_plain_byte_string(
    seed: int, spills: bool, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    buffer = PartBuffer()
    expected = bytearray()
    taken = bytearray()
    for _ in range(300):
        roll = rng.random()
        if roll < 0.6:
            chunk = rng.randbytes(rng.choice((0, 1, 7, 100, 4096)))
            buffer.append(chunk)
            expected += chunk
        elif roll < 0.75 and spills:
            in_memory = buffer.in_memory
            spilled = buffer.spilled
            assert buffer.spill(lambda: SpillFile(str(tmp_path))) == in_memory
            assert (buffer.in_memory, buffer.spilled) == (0, spilled + in_memory)
        else:
            size = rng.randint(1, 5000)
            part = buffer.take(size)
            assert type(part) is bytes
            assert len(part) == min(size, len(expected) - len(taken))
            taken += part
        assert len(buffer) == len(expected) - len(taken)
        assert buffer.in_memory + buffer.spilled == len(buffer)
    taken += buffer.take_all()
    assert taken == expected
    assert buffer.spilled == 0
    assert os.listdir(tmp_path) == []  # unnamed files, never seen in the directory


# --- Spilled to local disk (spill.py) -----------------------------------------------------------


class _FullDisk(SpillFile):
    """A spill file on a disk that takes `room` bytes, then refuses (ENOSPC) after a short write."""

    def __init__(self, directory: str, room: int) -> None:
        super().__init__(directory)
        self.room = room

    def append(self, chunks: Sequence[bytes | memoryview]) -> None:
        size = sum(map(len, chunks))
        if size > self.room:
            os.pwrite(self._file.fileno(), b"x" * self.room, self._end)  # a torn write
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= size
        super().append(chunks)


def test_a_spill_file_is_closed_once_read_back(tmp_path: Path) -> None:
    files: list[SpillFile] = []

    def open_file() -> SpillFile:
        files.append(SpillFile(str(tmp_path)))
        return files[-1]

    buffer = PartBuffer()
    buffer.append(b"abc")
    assert buffer.spill(open_file) == 3
    buffer.append(b"def")
    assert buffer.spill(open_file) == 3  # the same file: one per buffer
    buffer.append(b"gh")
    assert len(files) == 1
    assert buffer.take(2) == b"ab"
    assert not files[0]._file.closed
    assert buffer.take(5) == b"cdefg"  # the rest of the file, then memory
    assert files[0]._file.closed
    assert (buffer.spilled, buffer.in_memory, buffer.take_all()) == (0, 1, b"h")


def test_a_refused_spill_leaves_every_byte_where_it_was(tmp_path: Path) -> None:
    disk = _FullDisk(str(tmp_path), room=5)
    buffer = PartBuffer()
    buffer.append(b"abc")
    assert buffer.spill(lambda: disk) == 3
    buffer.append(b"defg")
    with pytest.raises(OSError, match="No space left"):
        buffer.spill(lambda: disk)
    assert (buffer.spilled, buffer.in_memory) == (3, 4)
    assert buffer.take_all() == b"abcdefg"  # the torn write's bytes are never read


def test_a_refused_first_spill_closes_its_file(tmp_path: Path) -> None:
    disk = _FullDisk(str(tmp_path), room=0)
    buffer = PartBuffer()
    buffer.append(b"abc")
    with pytest.raises(OSError, match="No space left"):
        buffer.spill(lambda: disk)
    assert disk._file.closed
    assert (buffer.spilled, buffer.in_memory, bytes(buffer)) == (0, 3, b"abc")


def test_closing_drops_the_spill_file(tmp_path: Path) -> None:
    files: list[SpillFile] = []
    buffer = PartBuffer()
    buffer.append(b"abc")
    buffer.spill(lambda: files.append(SpillFile(str(tmp_path))) or files[-1])
    buffer.append(b"d")
    buffer.close()
    assert files[0]._file.closed
    assert (len(buffer), buffer.take_all()) == (0, b"")
