"""Encoders turn one record into the bytes of one line of the output file.

Writers do not know the format: they ask an encoder for a header and for each record's line.
JSONL and unflattened CSV never parse `data`: the source's JSON bytes are copied as they came
(they are valid JSON: the envelope decoder checked them). Only root-level CSV flattening parses.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import msgspec

from destination_s3.compiled import ACCELERATED, speedups
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


# Root-level flattening reads `data` as raw JSON per field (msgspec.Raw) and builds each row as
# bytes: a cell holds the value's JSON text as the source wrote it (numbers keep every digit and
# their spelling, nested objects and arrays their text), a string its text, true/false, and null
# or a missing field nothing. Only strings with escapes are decoded; nothing is re-encoded, so no
# number can overflow on the way. Quoting is the csv module's QUOTE_MINIMAL (a cell is quoted
# when it holds `,`, `"`, CR or LF; quotes are doubled), decided per cell from what the JSON
# value can hold — a number or true/false never needs it — which costs less than the csv
# module's character-by-character pass over every cell.
RAW_NULL = msgspec.Raw(b"null")
_NOT_MATCHABLE = re.compile(r'["\\\x00-\x1f]')
# A record's fields as raw JSON: undeclared fields are copied from it (CSV and Parquet).
raw_fields = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_string = msgspec.json.Decoder(str).decode
_encode_json = msgspec.json.Encoder().encode
_QUOTE, _BACKSLASH, _OPEN_OBJECT, _OPEN_ARRAY = 0x22, 0x5C, 0x7B, 0x5B
_COMMA, _LF, _CR = 0x2C, 0x0A, 0x0D


def struct_can_match(names: Iterable[str]) -> bool:
    """Whether a msgspec Struct can be renamed to these JSON keys: msgspec refuses a key holding
    `"`, a backslash or a control character (such a stream takes the slower path)."""
    return not any(_NOT_MATCHABLE.search(name) for name in names)


def _csv_cell(raw: msgspec.Raw) -> bytes:
    """One JSON value as a CSV cell (see above). A byte is looked for as an int: `0x22 in text`
    costs a seventh of `b'"' in text`."""
    text = bytes(raw)
    first = text[0]
    if first == _QUOTE:
        # Without a backslash the JSON string's bytes are its text (JSON allows no raw control
        # characters); with one, msgspec undoes the escapes.
        text = _decode_string(text).encode() if _BACKSLASH in text else text[1:-1]
    elif first not in (_OPEN_OBJECT, _OPEN_ARRAY):
        return b"" if text == b"null" else text  # a number, true or false: never quoted
    if _QUOTE in text:
        return b'"' + text.replace(b'"', b'""') + b'"'
    if _COMMA in text or _LF in text or _CR in text:
        return b'"' + text + b'"'
    return text


class _LineSink:
    """The file object csv.writer writes one row into (the header)."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = ""

    def write(self, text: str) -> None:
        self.line = text


class RootLevelCsvEncoder:
    """One column per root-level property of the stream's schema, in schema order.

    Fields the schema does not declare go, as one JSON object, into `_tarsal_additional_properties`,
    so nothing a source sends is dropped. A declared property whose name clashes with one of the
    metadata columns is treated as undeclared, to keep every header name unique.

    The common record — no undeclared field — is decoded in one msgspec call into a Struct of the
    columns' raw values; any other goes through a dict of raw values. Both give the same cells.
    """

    def __init__(self, schema_properties: Sequence[str]) -> None:
        reserved = {AB_ID, EMITTED_AT, ADDITIONAL_PROPERTIES}
        self.columns = [name for name in dict.fromkeys(schema_properties) if name not in reserved]
        self._declared = frozenset(self.columns)
        self._decode_row: Callable[[bytes], Any] | None = None
        if struct_can_match(self.columns):
            fields = [(f"c{index}", msgspec.Raw, RAW_NULL) for index in range(len(self.columns))]
            renamed = {f"c{index}": name for index, name in enumerate(self.columns)}
            row = msgspec.defstruct("Row", fields, rename=renamed, forbid_unknown_fields=True)
            self._decode_row = msgspec.json.Decoder(row).decode

    def header(self) -> bytes:
        sink = _LineSink()
        csv.writer(sink, lineterminator="\r\n").writerow(
            [AB_ID, EMITTED_AT, *self.columns, ADDITIONAL_PROPERTIES]
        )
        return sink.line.encode()

    def __call__(self, ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
        if self._decode_row is not None:
            try:
                row = self._decode_row(data)
            except msgspec.ValidationError:
                pass
            else:
                cells = map(_csv_cell, msgspec.structs.astuple(row))
                # The last "cell" ends the row: an empty _tarsal_additional_properties, CRLF.
                return b",".join((ab_id, emitted_at, *cells, b"\r\n"))
        record = raw_fields(data)
        values = [_csv_cell(record[name]) if name in record else b"" for name in self.columns]
        declared = self._declared
        extra = {name: value for name, value in record.items() if name not in declared}
        # An object of raw values: it holds quotes, so it is always quoted.
        additional = b'"' + _encode_json(extra).replace(b'"', b'""') + b'"' if extra else b""
        return b",".join((ab_id, emitted_at, *values, additional)) + b"\r\n"


_NO_FLATTENING_HEADER = f"{METADATA},data\r\n".encode()


def root_level_csv_encoder(
    schema_properties: Sequence[str], accelerated: bool = ACCELERATED
) -> tuple[bytes, LineEncoder]:
    """The header and line encoder of root-level CSV: the C encoder in front of the Python one,
    which takes every record the C one leaves to it."""
    encoder = RootLevelCsvEncoder(schema_properties)
    if accelerated and speedups is not None:
        return encoder.header(), speedups.CsvRowEncoder(encoder.columns, encoder)
    return encoder.header(), encoder


def encoder_for(
    output_format: OutputFormat, schema_properties: Sequence[str]
) -> tuple[bytes, LineEncoder]:
    """The header (b"" for JSONL) and the line encoder of one stream's files."""
    if output_format is OutputFormat.JSONL:
        return b"", encode_jsonl if speedups is None else speedups.encode_jsonl
    if output_format is OutputFormat.CSV_NO_FLATTENING:
        encode = encode_csv_no_flattening if speedups is None else speedups.encode_csv_no_flattening
        return _NO_FLATTENING_HEADER, encode
    return root_level_csv_encoder(schema_properties)


def root_level_properties(json_schema: Any) -> list[str]:
    """Root-level property names of a stream's JSON schema, in the order the schema lists them."""
    if isinstance(json_schema, dict) and isinstance(json_schema.get("properties"), dict):
        return [str(name) for name in json_schema["properties"]]
    return []


_VARIANT = "89ab"


@functools.cache
def _suffixes() -> list[bytes]:
    """The 65,536 four-digit hex suffixes. Built on the first id, not at import: building them
    costs about 25 ms, which a sync without records (or `spec`, `check`) should not pay."""
    return [b"%04x" % number for number in range(1 << 16)]


def _uuid4_blocks(random_bytes: Callable[[int], bytes] = os.urandom) -> Iterator[bytes]:
    suffixes = _suffixes()
    while True:
        h = random_bytes(14).hex()
        # Version 4 and the RFC 4122 variant; the last four hex digits count within the block.
        prefix = (
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:28]}"
        )
        head = prefix.encode()
        for suffix in suffixes:
            yield head + suffix


class RecordIds:
    """Version-4 UUIDs as ASCII bytes: 106 random bits per block of 65,536 ids and a counter in
    the last four hex digits, so ids never repeat within a sync and cost one concatenation each
    (uuid.uuid4() per record would cost more than the rest of the JSONL encoding). In C when the
    extension is built (_record_ids.c: the same ids from the same random bytes)."""

    def __init__(
        self, random_bytes: Callable[[int], bytes] = os.urandom, accelerated: bool = ACCELERATED
    ) -> None:
        self.next: Callable[[], bytes] = (
            speedups.UuidIds(random_bytes)
            if accelerated and speedups is not None
            else _uuid4_blocks(random_bytes).__next__
        )
