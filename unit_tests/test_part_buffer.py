"""PartBuffer: parts come out exactly as the bytes went in, whatever the chunk boundaries."""

from __future__ import annotations

import random

import pytest

from destination_s3.part_buffer import PartBuffer


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


@pytest.mark.parametrize("seed", range(20))
def test_random_chunks_and_parts_match_a_plain_byte_string(seed: int) -> None:
    rng = random.Random(seed)
    buffer = PartBuffer()
    expected = bytearray()
    taken = bytearray()
    for _ in range(300):
        if rng.random() < 0.7:
            chunk = rng.randbytes(rng.choice((0, 1, 7, 100, 4096)))
            buffer.append(chunk)
            expected += chunk
        else:
            size = rng.randint(1, 5000)
            part = buffer.take(size)
            assert type(part) is bytes
            assert len(part) == min(size, len(expected) - len(taken))
            taken += part
        assert len(buffer) == len(expected) - len(taken)
    taken += buffer.take_all()
    assert taken == expected
