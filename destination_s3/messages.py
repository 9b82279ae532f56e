"""Decoding of Airbyte messages from stdin lines, without building a Python object per field.

Only the envelope is decoded: a RECORD's `data` and a STATE's body stay raw JSON bytes (msgspec
checks they are well-formed). TRACE, LOG and CONTROL messages are recognised and ignored.
"""

from __future__ import annotations

import logging
import sys

import msgspec

from destination_s3.errors import InputError

logger = logging.getLogger("airbyte")

MAX_DEPTH = sys.getrecursionlimit()


# gc=False: these hold only strings, numbers and raw bytes (no cycles), so the garbage
# collector need not track the million of them a sync creates.
class Record(msgspec.Struct, gc=False):
    stream: str
    data: msgspec.Raw
    # Required, as in the protocol: a made-up time would be wrong lineage in every output file.
    emitted_at: int | float
    namespace: str | None = None


class Envelope(msgspec.Struct, gc=False):
    type: str
    record: Record | None = None
    # Raw cannot sit in a union with None in msgspec: an empty Raw means "absent".
    state: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)

KNOWN_TYPES = frozenset({"RECORD", "STATE", "TRACE", "LOG", "CONTROL"})


def decode(line: bytes, line_number: int) -> Envelope:
    """Decode one stdin line; anything that is not a usable Airbyte message is an InputError."""
    try:
        envelope = ENVELOPE_DECODER.decode(line)
    except RecursionError:
        # msgspec decodes nested values recursively, up to Python's recursion limit.
        problem = f"JSON nested deeper than this connector can read (about {MAX_DEPTH} levels)"
        raise InputError(line_number, problem, line) from None
    except msgspec.DecodeError as exc:
        problem = str(exc)
        if "`emitted_at`" in problem or "`$.record.emitted_at`" in problem:
            problem = f"RECORD without a numeric `emitted_at`, which the protocol requires ({exc})"
        elif problem.startswith("Expected"):
            problem = f"not an Airbyte message: {problem}"
        raise InputError(line_number, problem, line) from None
    check(envelope, line_number, line)
    return envelope


def check(envelope: Envelope, line_number: int, line: bytes) -> None:
    """Raise the InputError for a decoded envelope that is not a usable Airbyte message."""
    kind = envelope.type
    if kind == "RECORD":
        record = envelope.record
        if record is None:
            raise InputError(line_number, "RECORD message without a `record` field", line)
    elif kind == "STATE":
        if not envelope.state or bytes(envelope.state) == b"null":
            raise InputError(line_number, "STATE message without a `state` field", line)
        body = bytes(envelope.state)
        if body[:1] != b"{":
            raise InputError(line_number, "STATE `state` is not a JSON object", line)
        if not body.isascii() and _repaired_utf8(body) is not None:
            # A state is echoed byte for byte: it cannot be repaired, only refused.
            raise InputError(line_number, "STATE `state` holds invalid UTF-8", line)
    elif kind not in KNOWN_TYPES:
        raise InputError(line_number, f"unexpected message type {kind[:40]!r}", line)


def record_data(record: Record, line_number: int, line: bytes) -> tuple[bytes, bool]:
    """The record's `data` as the source's own JSON bytes, and whether invalid UTF-8 in it was
    replaced; it must be a JSON object."""
    data = bytes(record.data)
    if data[:1] != b"{":
        raise InputError(line_number, "RECORD `data` is not a JSON object", line)
    if b"\r" in data:
        # A bare carriage return would split the line for some readers. msgspec refuses one
        # inside a string, so here it is whitespace between tokens: a space means the same.
        data = data.replace(b"\r", b" ")
    if data.isascii():
        return data, False
    repaired = _repaired_utf8(data)
    return (data, False) if repaired is None else (repaired, True)


def is_utf8(data: bytes) -> bool:
    return _repaired_utf8(data) is None


def _repaired_utf8(data: bytes) -> bytes | None:
    """None for valid UTF-8; else the bytes with each invalid sequence replaced by U+FFFD.

    msgspec checks JSON structure inside a Raw value but not UTF-8, and invalid bytes can only
    sit inside JSON strings: replacing them keeps the JSON valid, and every reader (DuckDB,
    pandas, pyarrow) refuses a file with invalid UTF-8 in it.
    """
    try:
        data.decode()
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace").encode()
    return None


class Utf8Repairs:
    """Counts the records whose invalid UTF-8 was replaced, per stream; the first of each stream
    is logged with its line number, the counts go into the end-of-sync summary."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str | None, str], int] = {}

    def note(self, stream_key: tuple[str | None, str], line_number: int) -> None:
        count = self._counts.get(stream_key, 0)
        if not count:
            logger.warning(
                "Input line %d: RECORD `data` of stream %s holds invalid UTF-8; each invalid byte "
                "sequence is replaced with U+FFFD. Records repaired are counted per stream at "
                "the end of the sync.",
                line_number,
                ".".join(part for part in stream_key if part),
            )
        self._counts[stream_key] = count + 1

    def count(self, namespace: str | None, name: str) -> int:
        return self._counts.get((namespace or None, name), 0)
