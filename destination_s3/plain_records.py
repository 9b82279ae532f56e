"""The intake's hot loop: a run of plain RECORD messages of one block, taken in one call.

A plain record is a RECORD whose stream already has a route, whose `data` is a JSON object in
valid UTF-8 without a bare CR, and which its encoder accepts. `take_plain_records` takes
envelopes from `start` for as long as they are plain, and stops at the first that is not, saying
why, so that the intake's per-message step (intake.py) deals with that one: a STATE, a message of
another type, a stream not seen yet, or a record that needs a look (which the line-by-line step
names). The C version in _plain_records.c has the same contract and the same effects;
unit_tests/test_plain_records.py holds the two to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from destination_s3.compiled import speedups
from destination_s3.messages import Envelope, is_utf8

# Why take_plain_records stopped.
END = 0  # every envelope was taken
OTHER = 1  # not a RECORD
NEW_STREAM = 2  # a RECORD of a stream without a route yet
NEEDS_LOOK = 3  # a RECORD the line-by-line step must take (and name, if it is bad)

Emitted = int | float
Taken = tuple[int, int, int, Emitted | None, bytes]
TakePlain = Callable[
    [list[Envelope], int, Mapping[Any, "Route"], list[Any], Callable[[], bytes], int,
     Emitted | None, bytes],
    Taken,
]  # fmt: skip
ScanPlain = Callable[
    [bytes, int, Mapping[Any, "Route"], list[Any], Callable[[], bytes], int, Emitted | None,
     bytes],
    tuple[int, int, Emitted | None, bytes],
]  # fmt: skip


class Route(Protocol):
    """What the loop needs of a stream's route (intake._Route)."""

    lines: list[bytes]
    emitted_at: list[Emitted]
    first_record: int

    @property
    def encode(self) -> Callable[[bytes, bytes, bytes], bytes]: ...


def take_plain_records(
    envelopes: list[Envelope],
    start: int,
    routes: Mapping[Any, Route],
    pending: list[Any],
    next_id: Callable[[], bytes],
    record_number: int,
    last_emitted_at: Emitted | None,
    emitted_at_text: bytes,
) -> Taken:
    """Take envelopes[start:] while they are plain records. Each is encoded and appended to its
    route's lines (a route's first line of the block also sets its `first_record` and queues it
    in `pending`). Returns (index of the first envelope not taken, why, the next record number,
    and the last emitted_at with its text, which consecutive records usually share).

    The intake's types are the contract (the C version checks them): `envelopes` and `pending`
    are lists, `routes` a dict, `start` and `record_number` non-negative ints that fit a C
    ssize_t, a route's `lines` and `emitted_at` lists. An exception other than a ValueError or
    RecursionError from the encoder is not the record's fault: it propagates."""
    index = start
    while index < len(envelopes):
        envelope = envelopes[index]
        if envelope.type != "RECORD":
            return index, OTHER, record_number, last_emitted_at, emitted_at_text
        record = envelope.record
        if record is None:
            return index, NEEDS_LOOK, record_number, last_emitted_at, emitted_at_text
        data = bytes(record.data)
        if data[:1] != b"{" or b"\r" in data or not (data.isascii() or is_utf8(data)):
            return index, NEEDS_LOOK, record_number, last_emitted_at, emitted_at_text
        namespace = record.namespace
        route = routes.get(record.stream if namespace is None else (namespace, record.stream))
        if route is None:
            return index, NEW_STREAM, record_number, last_emitted_at, emitted_at_text
        if record.emitted_at != last_emitted_at or type(record.emitted_at) is not type(
            last_emitted_at
        ):
            # A new value, or the same one spelled as a float after an int (or the reverse):
            # each record keeps its own for the manifest, whichever path took it.
            # Always finite: msgspec refuses a number out of a float's range.
            last_emitted_at = record.emitted_at
            emitted_at_text = str(int(last_emitted_at)).encode()
        encode = route.encode
        record_id = next_id()
        try:
            line = encode(record_id, emitted_at_text, data)
        except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
            return index, NEEDS_LOOK, record_number, last_emitted_at, emitted_at_text
        lines = route.lines
        if not lines:
            route.first_record = record_number
            pending.append(route)
        lines.append(line)
        route.emitted_at.append(last_emitted_at)
        record_number += 1
        index += 1
    return index, END, record_number, last_emitted_at, emitted_at_text


def count_newlines(block: bytes) -> int:
    return block.count(b"\n")


# What the intake uses: the C versions when they were built.
TAKE_PLAIN_RECORDS: TakePlain = (
    take_plain_records if speedups is None else speedups.take_plain_records
)
# The block scanner (_scan_records.c) exists only in C: without it the intake decodes each block
# with msgspec and takes the envelopes with take_plain_records.
SCAN_PLAIN_RECORDS: ScanPlain | None = None if speedups is None else speedups.scan_plain_records
COUNT_NEWLINES: Callable[[bytes], int] = (
    count_newlines if speedups is None else speedups.count_newlines
)
