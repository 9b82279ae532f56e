"""Encoders turn one record into the bytes of one line of the output file.

Writers do not know the format: they ask an encoder for a header and for each record's line.
JSONL and unflattened CSV never parse `data`: the source's JSON bytes are copied as they came
(they are valid JSON: the envelope decoder checked them). Only root-level CSV flattening parses.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec

from destination_s3.config import OutputFormat

AB_ID = "_tarsal_ab_id"
EMITTED_AT = "_tarsal_emitted_at"
METADATA = "_tarsal_metadata"
ADDITIONAL_PROPERTIES = "_tarsal_additional_properties"

# encode(ab_id, emitted_at, data): the two metadata values as ASCII bytes, data as raw JSON bytes.
LineEncoder = Callable[[bytes, bytes, bytes], bytes]

_JSONL_HEAD = b'{"_tarsal_metadata":{"_tarsal_ab_id":"'
_JSONL_MID = b'","_tarsal_emitted_at":"'
_JSONL_DATA = b'"},"data":'


def encode_jsonl(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
    return b"".join((_JSONL_HEAD, ab_id, _JSONL_MID, emitted_at, _JSONL_DATA, data, b"}\n"))


_CSV_META_HEAD = b'"{""_tarsal_ab_id"":""'
_CSV_META_MID = b'"",""_tarsal_emitted_at"":""'
_CSV_META_TAIL = b'""}","'


def encode_csv_no_flattening(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
    # Both columns hold JSON objects, which always contain quotes: always quote, double the quotes.
    quoted = data.replace(b'"', b'""')
    return b"".join(
        (_CSV_META_HEAD, ab_id, _CSV_META_MID, emitted_at, _CSV_META_TAIL, quoted, b'"\r\n')
    )


# msgspec rather than orjson: it keeps integers beyond 64 bits exact (orjson turns them into
# floats), and it is faster here.
_parse_object = msgspec.json.Decoder(dict[str, Any]).decode
_encode_json = msgspec.json.Encoder().encode


def _number_text(text: str) -> msgspec.Raw:
    return msgspec.Raw(text.encode())


def _parse_record(data: bytes) -> dict[str, Any]:
    try:
        return _parse_object(data)
    except msgspec.ValidationError:
        # Valid JSON with a number msgspec will not hold (beyond the float range, or an integer
        # of thousands of digits): the standard library hands over every number's text, which
        # is kept exactly as the source wrote it (a float would become infinity, written null).
        parsed: dict[str, Any] = json.loads(
            data, parse_int=_number_text, parse_float=_number_text, parse_constant=_number_text
        )
        return parsed


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    # Numbers, objects and arrays as compact JSON text: integers keep every digit.
    return _encode_json(value).decode()


class _LineSink:
    """The file object csv.writer writes one row into."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = ""

    def write(self, text: str) -> None:
        self.line = text


class RootLevelCsvEncoder:
    """One column per root-level property of the stream's schema, in schema order.

    Fields the schema does not declare go, as one JSON object, into `_tarsal_additional_properties`,
    so nothing a source sends is dropped. A declared property whose name clashes with one of the
    metadata columns is treated as undeclared, to keep every header name unique. Quoting is done
    by the csv module (C), which is faster than any per-cell check in Python.
    """

    def __init__(self, schema_properties: Sequence[str]) -> None:
        reserved = {AB_ID, EMITTED_AT, ADDITIONAL_PROPERTIES}
        self.columns = [name for name in dict.fromkeys(schema_properties) if name not in reserved]
        self._declared = frozenset(self.columns)
        self._sink = _LineSink()
        self._writer = csv.writer(self._sink, lineterminator="\r\n")

    def header(self) -> bytes:
        self._writer.writerow([AB_ID, EMITTED_AT, *self.columns, ADDITIONAL_PROPERTIES])
        return self._sink.line.encode()

    def __call__(self, ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
        record = _parse_record(data)
        get = record.get
        row = [ab_id.decode(), emitted_at.decode(), *[_cell(get(name)) for name in self.columns]]
        if self._declared.issuperset(record):
            row.append("")
        else:
            declared = self._declared
            extra = {name: value for name, value in record.items() if name not in declared}
            row.append(_encode_json(extra).decode())
        self._writer.writerow(row)
        return self._sink.line.encode()


_NO_FLATTENING_HEADER = f"{METADATA},data\r\n".encode()


def encoder_for(
    output_format: OutputFormat, schema_properties: Sequence[str]
) -> tuple[bytes, LineEncoder]:
    """The header (b"" for JSONL) and the line encoder of one stream's files."""
    if output_format is OutputFormat.JSONL:
        return b"", encode_jsonl
    if output_format is OutputFormat.CSV_NO_FLATTENING:
        return _NO_FLATTENING_HEADER, encode_csv_no_flattening
    encoder = RootLevelCsvEncoder(schema_properties)
    return encoder.header(), encoder


def root_level_properties(json_schema: Any) -> list[str]:
    """Root-level property names of a stream's JSON schema, in the order the schema lists them."""
    if isinstance(json_schema, dict) and isinstance(json_schema.get("properties"), dict):
        return [str(name) for name in json_schema["properties"]]
    return []


# 65,536 four-digit hex suffixes, built once.
_SUFFIXES = [b"%04x" % number for number in range(1 << 16)]
_VARIANT = "89ab"


def _uuid4_blocks() -> Iterator[bytes]:
    while True:
        h = os.urandom(14).hex()
        # Version 4 and the RFC 4122 variant; the last four hex digits count within the block.
        prefix = (
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:28]}"
        )
        head = prefix.encode()
        for suffix in _SUFFIXES:
            yield head + suffix


class RecordIds:
    """Version-4 UUIDs as ASCII bytes: 106 random bits per block of 65,536 ids and a counter in
    the last four hex digits, so ids never repeat within a sync and cost one concatenation each
    (uuid.uuid4() per record would cost more than the rest of the JSONL encoding)."""

    def __init__(self) -> None:
        self.next: Callable[[], bytes] = _uuid4_blocks().__next__
