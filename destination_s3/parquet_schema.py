"""A stream's Parquet columns, from its JSON schema, and what each column accepts.

Columns: `_tarsal_ab_id`, `_tarsal_emitted_at` (timestamp[ms, UTC]: a real time stamp, which a
lake's engines filter and partition on, where JSONL must keep the JSON number's text), then one
column per root-level property in schema order, then `_tarsal_additional_properties` (JSON text of
the fields the schema does not declare, null when none) and `_tarsal_meta` (null, or JSON text
`{"errors":[{"field":…,"value":…,"reason":…}]}` naming each value that did not fit its column).

Type mapping (Airbyte's, with its `airbyte_type` hints):

| JSON schema                                                   | Parquet / Arrow            |
|---------------------------------------------------------------|----------------------------|
| string                                                        | string                     |
| string, format date                                           | date32                     |
| string, format date-time / airbyte_type timestamp_with_timezone | timestamp[us, UTC]       |
| string, airbyte_type timestamp_without_timezone               | timestamp[us] (no zone)    |
| string, format time / airbyte_type time_without_timezone      | time64[us]                 |
| string, airbyte_type time_with_timezone                       | string (the text as sent)  |
| integer; number with airbyte_type integer                     | int64                      |
| integer or number with airbyte_type big_integer               | decimal128(38, 0)          |
| number with airbyte_type big_number                           | decimal128(38, 9)          |
| number (also ["integer", "number"])                           | float64                    |
| boolean                                                       | bool                       |
| object, array, a union of types, anything else                | JSON text (JSON logical type) |

`"null"` in a type list only makes the column nullable: every column is. A value that does not fit
(a string in an integer column, an integer beyond 64 bits, an unparsable date) makes the cell null
and is recorded, as sent, in `_tarsal_meta`: a sync never fails on a value, and nothing is lost.
A date-time without an offset is read as UTC; one with an offset is converted to UTC.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

# RAW_NULL: a JSON null in a JSON-text column (msgspec cannot put Raw in a union with None).
from destination_s3.encoders import RAW_NULL, struct_can_match

AB_ID = "_tarsal_ab_id"
EMITTED_AT = "_tarsal_emitted_at"
ADDITIONAL_PROPERTIES = "_tarsal_additional_properties"
META = "_tarsal_meta"
RESERVED = frozenset({AB_ID, EMITTED_AT, ADDITIONAL_PROPERTIES, META})


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_encode_json = msgspec.json.Encoder().encode


class Kind(enum.Enum):
    STRING = "string"
    INTEGER = "int64"
    BIG_INTEGER = "decimal128(38, 0)"
    BIG_NUMBER = "decimal128(38, 9)"
    NUMBER = "float64"
    BOOLEAN = "bool"
    DATE = "date32"
    TIMESTAMP_UTC = "timestamp[us, UTC]"
    TIMESTAMP_LOCAL = "timestamp[us]"
    TIME = "time64[us]"
    JSON = "json"

    @property
    def decimal_scale(self) -> int:
        return 9 if self is Kind.BIG_NUMBER else 0


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


def declared_columns(json_schema: Any) -> list[Column]:
    """One column per root-level property, in schema order; a property named like one of our own
    columns is left undeclared (it lands in `_tarsal_additional_properties`)."""
    properties = json_schema.get("properties") if isinstance(json_schema, dict) else None
    if not isinstance(properties, dict):
        return []
    return [
        Column(str(name), column_kind(prop))
        for name, prop in properties.items()
        if str(name) not in RESERVED
    ]


def column_kind(prop: Any) -> Kind:
    if not isinstance(prop, dict):
        return Kind.JSON
    declared = prop.get("type")
    types = [declared] if isinstance(declared, str) else declared
    if not isinstance(types, list):
        return Kind.JSON
    if not all(isinstance(kind, str) for kind in types):
        return Kind.JSON
    kinds = {kind for kind in types if kind != "null"}
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    if len(kinds) != 1:
        return Kind.JSON
    # Hints of another type than a string (a list, an object) are not hints: ignored.
    airbyte_type, fmt = (
        hint if isinstance(hint, str) else None
        for hint in (prop.get("airbyte_type"), prop.get("format"))
    )
    kind = kinds.pop()
    if kind == "string":
        return _STRING_KINDS.get(airbyte_type) or _STRING_FORMATS.get(fmt) or Kind.STRING
    if kind in ("integer", "number"):
        if airbyte_type == "big_integer":
            return Kind.BIG_INTEGER
        if airbyte_type == "big_number" and kind == "number":
            return Kind.BIG_NUMBER
        return Kind.INTEGER if kind == "integer" or airbyte_type == "integer" else Kind.NUMBER
    return Kind.BOOLEAN if kind == "boolean" else Kind.JSON


_STRING_KINDS: dict[Any, Kind] = {
    "timestamp_with_timezone": Kind.TIMESTAMP_UTC,
    "timestamp_without_timezone": Kind.TIMESTAMP_LOCAL,
    "time_with_timezone": Kind.STRING,
    "time_without_timezone": Kind.TIME,
    "date": Kind.DATE,
}
_STRING_FORMATS: dict[Any, Kind] = {
    "date-time": Kind.TIMESTAMP_UTC,
    "date": Kind.DATE,
    "time": Kind.TIME,
}

# What msgspec decodes each kind's values into, on both paths. A value msgspec refuses fails the
# whole chunk on the fast path; record by record (`salvage_value`) it gets a second, lenient look.
# Decimals stay as the JSON text (Raw) and times as the string, and are converted in Python by
# `check` (rare column types): exact digits, and an offset on a time is refused, not dropped.
FAST_TYPES: dict[Kind, Any] = {
    Kind.STRING: str,
    Kind.INTEGER: int,
    Kind.BIG_INTEGER: msgspec.Raw,
    Kind.BIG_NUMBER: msgspec.Raw,
    Kind.NUMBER: float,
    Kind.BOOLEAN: bool,
    Kind.DATE: dt.date,
    Kind.TIMESTAMP_UTC: dt.datetime,
    Kind.TIMESTAMP_LOCAL: dt.datetime,
    Kind.TIME: str,
    Kind.JSON: msgspec.Raw,
}
CHECKED_IN_PYTHON = frozenset({Kind.BIG_INTEGER, Kind.BIG_NUMBER, Kind.TIME})
_RAW_KINDS = frozenset({Kind.BIG_INTEGER, Kind.BIG_NUMBER, Kind.JSON})


def struct_decodable(columns: Sequence[Column]) -> bool:
    """Whether msgspec can decode records into `row_struct(columns)` (the fast path); if not, the
    stream goes record by record."""
    return struct_can_match(column.name for column in columns)


def row_struct(columns: Sequence[Column]) -> type[msgspec.Struct]:
    """A msgspec Struct decoding one record's `data` into the declared columns' values (field
    `c<i>` is the i-th column); an undeclared field fails the decode, so the fast path only takes
    records that have none. A missing field and a JSON null are both None (RAW_NULL for Raw).
    Columns are renamed to their JSON names only when msgspec can match them all
    (`struct_decodable`); otherwise the Struct only holds values for the record-by-record path."""
    fields: list[tuple[str, Any, Any]] = []
    for index, column in enumerate(columns):
        if column.kind in _RAW_KINDS:
            fields.append((f"c{index}", msgspec.Raw, RAW_NULL))
        else:
            fields.append((f"c{index}", FAST_TYPES[column.kind] | None, None))
    rename = {f"c{index}": column.name for index, column in enumerate(columns)}
    if not struct_decodable(columns):
        rename = {}
    return msgspec.defstruct("Row", fields, rename=rename, forbid_unknown_fields=True, kw_only=True)


class Misfit(ValueError):
    """A value does not fit its column; the message is the reason recorded in `_tarsal_meta`."""


_RAW_TYPES = {b"{": "an object", b"[": "an array", b'"': "a string", b"t": "a boolean"}
_RAW_TYPES |= {b"f": "a boolean", b"n": "null"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, msgspec.Raw):
        return _RAW_TYPES.get(bytes(value)[:1], "a number")
    if isinstance(value, int | float):
        return "a number"
    return _JSON_TYPES.get(type(value), "a value")


_JSON_TYPES: dict[type, str] = {str: "a string", dict: "an object", list: "an array"}


def _expect(value: Any, wanted: Any, noun: str) -> Any:
    if not isinstance(value, wanted) or isinstance(value, bool) is not (wanted is bool):
        raise Misfit(f"expected {noun}, got {_json_type(value)}")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    number: int = _expect(value, int, "an integer")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise Misfit("integer beyond the 64-bit range")
    return number


def _number(value: Any) -> float:
    if isinstance(value, msgspec.Raw) and _json_type(value) == "a number":
        raise Misfit("number beyond the 64-bit floating point range")  # kept as text by parsing
    number = _expect(value, int | float, "a number")
    try:
        number = float(number)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise Misfit("number beyond the 64-bit floating point range")
    return float(number)


# Enough digits for the quantize of any decimal128(38, s) value.
_DECIMAL_CONTEXT = decimal.Context(prec=80, Emax=10**6, Emin=-(10**6))


def _decimal(scale: int) -> Callable[[Any], decimal.Decimal]:
    quantum = decimal.Decimal(1).scaleb(-scale)

    def check(value: Any) -> decimal.Decimal:
        """The JSON number (or a string holding one) as sent, exactly, or Misfit."""
        text = bytes(value).decode() if isinstance(value, msgspec.Raw) else value
        if isinstance(text, str) and text.startswith('"'):
            text = msgspec.json.decode(text)  # a number sent as a string: its digits are kept
        elif not isinstance(text, str) or text[:1] in ("{", "[", "t", "f", "n"):
            raise Misfit(f"expected a number, got {_json_type(value)}")
        try:
            number = decimal.Decimal(text.strip())  # exact, whatever the number of digits
        except decimal.InvalidOperation:
            raise Misfit("not a number") from None
        if not number.is_finite() or "_" in text:
            raise Misfit("not a number")
        if number and number.adjusted() >= 38 - scale:
            raise Misfit(f"number with more than {38 - scale} digits before the decimal point")
        exact = number.quantize(quantum, decimal.ROUND_DOWN, _DECIMAL_CONTEXT)
        if exact != number:
            raise Misfit(f"number with more than {scale} digits after the decimal point")
        return exact

    return check


def _timestamp(value: Any) -> dt.datetime:
    text: str = _expect(value, str, "a date-time string")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise Misfit("not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.timezone.utc)


def _date(value: Any) -> dt.date:
    text: str = _expect(value, str, "a date string")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Misfit("not an ISO 8601 date (YYYY-MM-DD)") from None


def _time(value: Any) -> dt.time:
    text: str = _expect(value, str, "a time string")
    try:
        parsed = dt.time.fromisoformat(text)
    except ValueError:
        raise Misfit("not an ISO 8601 time") from None
    if parsed.tzinfo is not None:
        raise Misfit("time with a UTC offset in a column without time zone")
    return parsed


# The lenient look at a value msgspec refused (record by record): JSON values as parsed in,
# the value `FAST_TYPES` holds out (a Raw or str for kinds checked in Python).
_LENIENT: dict[Kind, Callable[[Any], Any]] = {
    Kind.STRING: lambda value: _expect(value, str, "a string"),
    Kind.INTEGER: _integer,
    Kind.NUMBER: _number,
    Kind.BOOLEAN: lambda value: _expect(value, bool, "a boolean"),
    Kind.DATE: _date,
    Kind.TIMESTAMP_UTC: _timestamp,
    Kind.TIMESTAMP_LOCAL: _timestamp,
    Kind.TIME: lambda value: _expect(value, str, "a time string"),
}

# The Python step of the kinds msgspec cannot finish (and of an int64 beyond range, which
# msgspec's `int` takes): from what FAST_TYPES holds to the Arrow-ready value, or Misfit.
CHECKS: dict[Kind, Callable[[Any], Any]] = {
    Kind.BIG_INTEGER: _decimal(0),
    Kind.BIG_NUMBER: _decimal(9),
    Kind.TIME: _time,
    Kind.INTEGER: _integer,
}

_DECODERS = {
    kind: msgspec.json.Decoder(wanted | None).decode
    for kind, wanted in FAST_TYPES.items()
    if kind not in _RAW_KINDS
}
_parse_any = msgspec.json.Decoder().decode


def salvage_value(kind: Kind, raw: msgspec.Raw) -> Any:
    """What the fast path's decode gives for this value (the same msgspec call, so both paths
    agree cell for cell), else the lenient conversion of a value msgspec refuses; Misfit if it
    does not fit. Raw kinds keep the raw text."""
    if kind in _RAW_KINDS:
        return raw
    try:
        return _DECODERS[kind](raw)
    except (msgspec.DecodeError, RecursionError):
        pass
    return _LENIENT[kind](_parse_value(raw))


def _parse_value(raw: msgspec.Raw) -> Any:
    try:
        value = _parse_any(raw)
        if not (isinstance(value, float) and not math.isfinite(value)):
            return value
    except msgspec.DecodeError:
        pass
    except RecursionError:
        return raw  # nested too deep to look at: it is not a scalar, and stays Raw
    try:
        # A number msgspec will not hold (beyond the float range, an integer of thousands of
        # digits): Python's integers are exact; other numbers stay as their JSON text.
        return json.loads(bytes(raw), parse_float=_float_or_raw, parse_constant=_raw_text)
    except (ValueError, RecursionError):
        return raw


def _float_or_raw(text: str) -> float | msgspec.Raw:
    number = float(text)
    return number if math.isfinite(number) else _raw_text(text)


def _raw_text(text: str) -> msgspec.Raw:
    return msgspec.Raw(text.encode())


def error_entry(field: str, value: Any, reason: str) -> dict[str, Any]:
    """One `_tarsal_meta` error. The value as the source sent it: a Raw is written verbatim."""
    return {"field": field, "value": value, "reason": reason}
