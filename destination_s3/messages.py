"""Decoding of Airbyte messages from stdin lines, without building a Python object per field.

Only the envelope is decoded: a RECORD's `data` and a STATE's body stay raw JSON bytes (msgspec
checks they are well-formed). TRACE, LOG and CONTROL messages are recognised and ignored.
"""

from __future__ import annotations

import msgspec

from destination_s3.errors import InputError


# gc=False: these hold only strings, numbers and raw bytes (no cycles), so the garbage
# collector need not track the million of them a sync creates.
class Record(msgspec.Struct, gc=False):
    stream: str
    data: msgspec.Raw
    emitted_at: int | float = 0
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
    except msgspec.DecodeError as exc:
        problem = str(exc)
        if problem.startswith("Expected"):
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
        if bytes(envelope.state)[:1] != b"{":
            raise InputError(line_number, "STATE `state` is not a JSON object", line)
    elif kind not in KNOWN_TYPES:
        raise InputError(line_number, f"unexpected message type {kind[:40]!r}", line)


def record_data(record: Record, line_number: int, line: bytes) -> bytes:
    """The record's `data` as the source's own JSON bytes; it must be a JSON object."""
    data = bytes(record.data)
    if data[:1] != b"{":
        raise InputError(line_number, "RECORD `data` is not a JSON object", line)
    if b"\r" in data:
        # A bare carriage return between JSON tokens would split the line for some readers.
        data = msgspec.json.encode(msgspec.json.decode(data))
    return data
