"""Parquet objects, in process: JSON schema → column kinds, one record per kind read back exactly,
values that do not fit their column (null cell, `_tarsal_meta` entry), undeclared fields, the fast
path against record-by-record conversion (seeded random corpora), ParquetBody's row groups, codecs
and memory accounting, and huge inputs."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import random
import sys
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from destination_s3.config import ParquetOptions
from destination_s3.messages import decode
from destination_s3.parquet import _CHUNK_BYTES, ParquetBody, StreamColumns, encode_line
from destination_s3.parquet_schema import Column, Kind, column_kind, declared_columns

UTC = dt.timezone.utc
EMITTED_AT = b"1700000000123"
EMITTED_AT_TIME = dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
TAIL = ["_tarsal_additional_properties", "_tarsal_meta"]


def line(index: int, data: bytes) -> bytes:
    return encode_line(f"id-{index}".encode(), EMITTED_AT, data)


def write(
    columns: list[Column],
    datas: list[bytes],
    options: ParquetOptions | None = None,
    stream: StreamColumns | None = None,
) -> bytes:
    """One Parquet object holding `datas` (record `data` texts), as ParquetBody produces it."""
    body = ParquetBody(stream or StreamColumns(columns), options or ParquetOptions())
    pieces = [body.compress(line(index, data)) for index, data in enumerate(datas)]
    return b"".join(pieces) + body.finish()


def read(data: bytes) -> pa.Table:
    # use_threads=False: read_table's thread pool makes this interpreter abort at exit now and
    # then (`terminate called without an active exception`), whatever file it read.
    return pq.read_table(io.BytesIO(data), use_threads=False)


def rows(columns: list[Column], datas: list[bytes]) -> list[dict[str, Any]]:
    return read(write(columns, datas)).to_pylist()


def one_cell(kind: Kind, value: bytes) -> tuple[Any, str | None]:
    """The cell and `_tarsal_meta` of `{"v": <value>}` in a one-column stream."""
    [row] = rows([Column("v", kind)], [b'{"v":' + value + b"}"])
    return row["v"], row["_tarsal_meta"]


def meta(*errors: tuple[str, Any, str]) -> str:
    """`_tarsal_meta` text, compact as msgspec writes it (a `number(...)` value verbatim)."""
    entries = [
        {"field": field, "value": value, "reason": reason} for field, value, reason in errors
    ]
    return msgspec.json.encode({"errors": entries}).decode()


def number(text: str) -> msgspec.Raw:
    """A JSON number as the source wrote it: `_tarsal_meta` records it verbatim."""
    return msgspec.Raw(text.encode())


# --- Column kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prop", "kind"),
    [
        # The docstring's mapping table, row by row.
        ({"type": "string"}, Kind.STRING),
        ({"type": "string", "format": "date"}, Kind.DATE),
        ({"type": "string", "airbyte_type": "date"}, Kind.DATE),
        ({"type": "string", "format": "date-time"}, Kind.TIMESTAMP_UTC),
        ({"type": "string", "airbyte_type": "timestamp_with_timezone"}, Kind.TIMESTAMP_UTC),
        ({"type": "string", "airbyte_type": "timestamp_without_timezone"}, Kind.TIMESTAMP_LOCAL),
        ({"type": "string", "format": "time"}, Kind.TIME),
        ({"type": "string", "airbyte_type": "time_without_timezone"}, Kind.TIME),
        ({"type": "string", "airbyte_type": "time_with_timezone"}, Kind.STRING),
        ({"type": "integer"}, Kind.INTEGER),
        ({"type": "number", "airbyte_type": "integer"}, Kind.INTEGER),
        ({"type": "integer", "airbyte_type": "big_integer"}, Kind.BIG_INTEGER),
        ({"type": "number", "airbyte_type": "big_integer"}, Kind.BIG_INTEGER),
        ({"type": "number", "airbyte_type": "big_number"}, Kind.BIG_NUMBER),
        ({"type": "number"}, Kind.NUMBER),
        ({"type": ["integer", "number"]}, Kind.NUMBER),
        ({"type": "boolean"}, Kind.BOOLEAN),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, Kind.JSON),
        ({"type": "array", "items": {"type": "string"}}, Kind.JSON),
        # Airbyte's own spellings: the airbyte_type wins over the format.
        (
            {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
            Kind.TIMESTAMP_UTC,
        ),
        (
            {"type": "string", "format": "date-time", "airbyte_type": "timestamp_without_timezone"},
            Kind.TIMESTAMP_LOCAL,
        ),
        ({"type": "string", "format": "time", "airbyte_type": "time_with_timezone"}, Kind.STRING),
        ({"type": "string", "format": "time", "airbyte_type": "time_without_timezone"}, Kind.TIME),
        ({"type": "integer", "airbyte_type": "big_number"}, Kind.INTEGER),
        ({"type": "string", "format": "email"}, Kind.STRING),
        # "null" in a type list only makes the column nullable.
        ({"type": ["null", "integer"]}, Kind.INTEGER),
        ({"type": ["integer", "null"]}, Kind.INTEGER),
        ({"type": ["null", "string"], "format": "date-time"}, Kind.TIMESTAMP_UTC),
        ({"type": ["null", "boolean"]}, Kind.BOOLEAN),
        ({"type": ["null", "integer", "number"]}, Kind.NUMBER),
        ({"type": ["number", "integer"], "airbyte_type": "big_number"}, Kind.BIG_NUMBER),
        ({"type": ["integer", "integer"]}, Kind.INTEGER),
        # Unions and whatever is not a single known type: JSON text.
        ({"type": ["string", "integer"]}, Kind.JSON),
        ({"type": ["null", "string", "boolean"]}, Kind.JSON),
        ({"type": ["null"]}, Kind.JSON),
        ({"type": "null"}, Kind.JSON),
        ({"type": []}, Kind.JSON),
        ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, Kind.JSON),
        ({"oneOf": [{"type": "integer"}]}, Kind.JSON),
        ({"$ref": "#/definitions/thing"}, Kind.JSON),
        ({}, Kind.JSON),
        ({"format": "date-time"}, Kind.JSON),
        ({"type": "uuid"}, Kind.JSON),
        ({"type": 5}, Kind.JSON),
        ({"type": {"name": "integer"}}, Kind.JSON),
        ("string", Kind.JSON),
        (None, Kind.JSON),
        (True, Kind.JSON),
        ([{"type": "integer"}], Kind.JSON),
    ],
)
def test_column_kind(prop: Any, kind: Kind) -> None:
    assert column_kind(prop) is kind


def test_declared_columns_in_schema_order_without_reserved_names() -> None:
    schema = {
        "type": "object",
        "properties": {
            "zeta": {"type": "integer"},
            "_tarsal_ab_id": {"type": "string"},
            "alpha": {"type": "object"},
            "_tarsal_emitted_at": {"type": "integer"},
            "mid": {"type": "string", "format": "date"},
            "_tarsal_additional_properties": {"type": "object"},
            "_tarsal_meta": {"type": "string"},
            "_tarsal_other": {"type": "boolean"},
        },
    }
    assert declared_columns(schema) == [
        Column("zeta", Kind.INTEGER),
        Column("alpha", Kind.JSON),
        Column("mid", Kind.DATE),
        Column("_tarsal_other", Kind.BOOLEAN),
    ]


@pytest.mark.parametrize(
    "schema",
    [{}, {"type": "object"}, {"properties": None}, {"properties": []}, None, "object", []],
)
def test_declared_columns_without_properties(schema: Any) -> None:
    assert declared_columns(schema) == []


# --- One record of every kind, read back --------------------------------------------------

ALL_KINDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "s": {"type": "string"},
        "i": {"type": ["null", "integer"]},
        "f": {"type": "number"},
        "fi": {"type": ["integer", "number"]},
        "b": {"type": "boolean"},
        "d": {"type": "string", "format": "date"},
        "ts": {"type": "string", "format": "date-time"},
        "ts_off": {"type": "string", "airbyte_type": "timestamp_with_timezone"},
        "local": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
        "local_off": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
        "t": {"type": "string", "format": "time"},
        "ttz": {"type": "string", "airbyte_type": "time_with_timezone"},
        "big_n": {"type": "number", "airbyte_type": "big_number"},
        "big_i": {"type": "integer", "airbyte_type": "big_integer"},
        "o": {"type": "object"},
        "a": {"type": "array"},
        "u": {"type": ["string", "integer"]},
        "n": {"type": "string"},
        "jn": {"type": "object"},
        "m": {"type": "integer"},
    },
}
ALL_KINDS_DATA = (
    b'{"s":"h\\u00e9llo w\xc3\xb6rld","i":-42,"f":2.5,"fi":7,"b":true,"d":"2024-02-29",'
    b'"ts":"2024-01-02T03:04:05.123456Z","ts_off":"2024-01-02T03:04:05+05:30",'
    b'"local":"2024-01-02T03:04:05.5","local_off":"2024-01-02T23:30:00-01:00",'
    b'"t":"23:59:59.999999","ttz":"12:00:00+02:00",'
    b'"big_n":123.456,"big_i":12345678901234567890123,'
    b'"o":{ "k" : [1, 2.50, "x"],  "e":{} },"a":[ 1 ,{"z":null} ],"u":"text",'
    b'"n":null,"jn":null}'
)
ALL_KINDS_ROW: dict[str, Any] = {
    "_tarsal_ab_id": "id-0",
    "_tarsal_emitted_at": EMITTED_AT_TIME,
    "s": "héllo wörld",
    "i": -42,
    "f": 2.5,
    "fi": 7.0,
    "b": True,
    "d": dt.date(2024, 2, 29),
    "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    "ts_off": dt.datetime(2024, 1, 1, 21, 34, 5, tzinfo=UTC),
    "local": dt.datetime(2024, 1, 2, 3, 4, 5, 500000),
    "local_off": dt.datetime(2024, 1, 3, 0, 30),
    "t": dt.time(23, 59, 59, 999999),
    "ttz": "12:00:00+02:00",
    "big_n": decimal.Decimal("123.456000000"),
    "big_i": decimal.Decimal("12345678901234567890123"),
    "o": '{ "k" : [1, 2.50, "x"],  "e":{} }',
    "a": '[ 1 ,{"z":null} ]',
    "u": '"text"',
    "n": None,
    "jn": None,
    "m": None,
    "_tarsal_additional_properties": None,
    "_tarsal_meta": None,
}
ALL_KINDS_ARROW = pa.schema(
    [
        ("_tarsal_ab_id", pa.string()),
        ("_tarsal_emitted_at", pa.timestamp("ms", tz="UTC")),
        ("s", pa.string()),
        ("i", pa.int64()),
        ("f", pa.float64()),
        ("fi", pa.float64()),
        ("b", pa.bool_()),
        ("d", pa.date32()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("ts_off", pa.timestamp("us", tz="UTC")),
        ("local", pa.timestamp("us")),
        ("local_off", pa.timestamp("us")),
        ("t", pa.time64("us")),
        ("ttz", pa.string()),
        ("big_n", pa.decimal128(38, 9)),
        ("big_i", pa.decimal128(38, 0)),
        ("o", pa.json_()),
        ("a", pa.json_()),
        ("u", pa.json_()),
        ("n", pa.string()),
        ("jn", pa.json_()),
        ("m", pa.int64()),
        ("_tarsal_additional_properties", pa.json_()),
        ("_tarsal_meta", pa.json_()),
    ]
)


@pytest.mark.parametrize(
    ("extra", "additional"),
    [(b"", None), (b',"zz":{ "q" : 1 }', '{"zz":{ "q" : 1 }}')],
    ids=["fast-path", "record-by-record"],
)
def test_one_record_of_every_kind_reads_back_exactly(extra: bytes, additional: str | None) -> None:
    # An undeclared field sends the record down the record-by-record path: same cells.
    data = ALL_KINDS_DATA[:-1] + extra + b"}"
    [row] = rows(declared_columns(ALL_KINDS_SCHEMA), [data])
    assert row == {**ALL_KINDS_ROW, "_tarsal_additional_properties": additional}
    assert str(row["big_n"]) == "123.456000000"


def test_arrow_and_parquet_schema() -> None:
    body = write(declared_columns(ALL_KINDS_SCHEMA), [ALL_KINDS_DATA])
    table = read(body)
    assert table.schema == ALL_KINDS_ARROW
    assert table.schema.field("o").type == pa.json_()
    parquet_schema = pq.ParquetFile(io.BytesIO(body)).schema
    logical = {
        parquet_schema.column(index).name: str(parquet_schema.column(index).logical_type)
        for index in range(len(parquet_schema))
    }
    json_columns = {"o", "a", "u", "jn", *TAIL}
    assert {name for name, kind in logical.items() if kind == "JSON"} == json_columns
    assert logical["s"] == "String"
    assert logical["d"] == "Date"
    assert logical["i"] == "None"
    assert logical["_tarsal_emitted_at"].startswith(
        "Timestamp(isAdjustedToUTC=true, timeUnit=milli"
    )
    assert logical["ts"].startswith("Timestamp(isAdjustedToUTC=true, timeUnit=micro")
    assert logical["local"].startswith("Timestamp(isAdjustedToUTC=false, timeUnit=micro")
    assert logical["t"].startswith("Time(isAdjustedToUTC=false, timeUnit=micro")
    assert logical["big_n"] == "Decimal(precision=38, scale=9)"
    assert logical["big_i"] == "Decimal(precision=38, scale=0)"


@pytest.mark.parametrize(
    ("emitted_at", "expected"),
    [
        (b"1700000000123", EMITTED_AT_TIME),
        (b"0", dt.datetime(1970, 1, 1, tzinfo=UTC)),
        (b"1709251199999", dt.datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)),
        (b"-1", dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_ab_id_and_emitted_at(emitted_at: bytes, expected: dt.datetime) -> None:
    ab_id = b"4f1c2e9a-8b7d-4c3e-9f10-2a3b4c5d6e7f"
    body = ParquetBody(StreamColumns([]), ParquetOptions())
    table = read(body.compress(encode_line(ab_id, emitted_at, b"{}")) + body.finish())
    assert table.to_pylist() == [
        {
            "_tarsal_ab_id": ab_id.decode(),
            "_tarsal_emitted_at": expected,
            "_tarsal_additional_properties": None,
            "_tarsal_meta": None,
        }
    ]


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("data", [b'{"v":null}', b"{}"], ids=["json-null", "missing"])
def test_null_and_missing_make_a_null_cell(kind: Kind, data: bytes) -> None:
    [row] = rows([Column("v", kind)], [data])
    assert (row["v"], row["_tarsal_additional_properties"], row["_tarsal_meta"]) == (None,) * 3


# --- Values that do not fit their column ---------------------------------------------------

INT_REASON = "expected an integer, got a number"
FLOAT_RANGE = "number beyond the 64-bit floating point range"
TIME_OFFSET = "time with a UTC offset in a column without time zone"


@pytest.mark.parametrize(
    ("kind", "value", "cell", "errors"),
    [
        pytest.param(
            Kind.INTEGER, b'"5"', None, [("5", "expected an integer, got a string")], id="str-int"
        ),
        pytest.param(
            Kind.INTEGER,
            b"1180591620717411303424",
            None,
            [(2**70, "integer beyond the 64-bit range")],
            id="2**70-int",
        ),
        pytest.param(
            Kind.INTEGER,
            b"9223372036854775808",
            None,
            [(2**63, "integer beyond the 64-bit range")],
            id="2**63-int",
        ),
        pytest.param(
            Kind.INTEGER,
            b"-9223372036854775809",
            None,
            [(-(2**63) - 1, "integer beyond the 64-bit range")],
            id="-2**63-1-int",
        ),
        pytest.param(Kind.INTEGER, b"9223372036854775807", 2**63 - 1, [], id="2**63-1-int"),
        pytest.param(Kind.INTEGER, b"3.0", 3, [], id="3.0-int"),
        pytest.param(Kind.INTEGER, b"1e2", 100, [], id="1e2-int"),
        pytest.param(Kind.INTEGER, b"-1.5", None, [(-1.5, INT_REASON)], id="-1.5-int"),
        pytest.param(Kind.INTEGER, b"1e400", None, [(number("1e400"), INT_REASON)], id="1e400-int"),
        pytest.param(
            Kind.INTEGER, b"[1]", None, [([1], "expected an integer, got an array")], id="list-int"
        ),
        pytest.param(
            Kind.NUMBER, b"1e400", None, [(number("1e400"), FLOAT_RANGE)], id="1e400-number"
        ),
        pytest.param(
            Kind.NUMBER, b"-1e400", None, [(number("-1e400"), FLOAT_RANGE)], id="-1e400-number"
        ),
        pytest.param(Kind.NUMBER, b"1e-400", 0.0, [], id="1e-400-number"),
        pytest.param(Kind.NUMBER, b"7", 7.0, [], id="int-number"),
        pytest.param(
            Kind.NUMBER, b"true", None, [(True, "expected a number, got a boolean")], id="bool-num"
        ),
        pytest.param(
            Kind.STRING, b"12", None, [(12, "expected a string, got a number")], id="num-string"
        ),
        pytest.param(
            Kind.STRING,
            b'{"a":1}',
            None,
            [({"a": 1}, "expected a string, got an object")],
            id="object-string",
        ),
        pytest.param(
            Kind.TIMESTAMP_UTC,
            b'"yesterday"',
            None,
            [("yesterday", "not an ISO 8601 date-time")],
            id="bad-date-time",
        ),
        pytest.param(
            Kind.TIMESTAMP_UTC,
            b"1700000000",
            None,
            [(1700000000, "expected a date-time string, got a number")],
            id="epoch-date-time",
        ),
        pytest.param(
            Kind.DATE,
            b'"2024-13-01"',
            None,
            [("2024-13-01", "not an ISO 8601 date (YYYY-MM-DD)")],
            id="month-13-date",
        ),
        pytest.param(
            Kind.DATE,
            b'"2023-02-29"',
            None,
            [("2023-02-29", "not an ISO 8601 date (YYYY-MM-DD)")],
            id="no-leap-day-date",
        ),
        pytest.param(
            Kind.TIME, b'"12:00:00+02:00"', None, [("12:00:00+02:00", TIME_OFFSET)], id="tz-time"
        ),
        # Recorded "as sent" (module docstring, error_entry): the text the source wrote.
        pytest.param(Kind.TIME, b'"12:00:00Z"', None, [("12:00:00Z", TIME_OFFSET)], id="Z-time"),
        pytest.param(
            Kind.TIME, b'"25:00:00"', None, [("25:00:00", "not an ISO 8601 time")], id="25h-time"
        ),
        pytest.param(
            Kind.BIG_NUMBER,
            b"1.0123456789",
            None,
            [(number("1.0123456789"), "number with more than 9 digits after the decimal point")],
            id="10-digit-fraction-big-number",
        ),
        pytest.param(
            Kind.BIG_NUMBER,
            b"1e-10",
            None,
            [(number("1e-10"), "number with more than 9 digits after the decimal point")],
            id="1e-10-big-number",
        ),
        pytest.param(
            Kind.BIG_NUMBER,
            b"123456789012345678901234567890",
            None,
            [
                (
                    number("123456789012345678901234567890"),
                    "number with more than 29 digits before the decimal point",
                )
            ],
            id="30-digits-big-number",
        ),
        pytest.param(Kind.BIG_NUMBER, b'"0.5"', decimal.Decimal("0.5"), [], id="text-big-number"),
        pytest.param(
            Kind.BIG_INTEGER,
            b"1.5",
            None,
            [(number("1.5"), "number with more than 0 digits after the decimal point")],
            id="1.5-big-integer",
        ),
        pytest.param(
            Kind.BIG_INTEGER, b'"abc"', None, [("abc", "not a number")], id="text-big-integer"
        ),
        pytest.param(
            Kind.BOOLEAN, b"1", None, [(1, "expected a boolean, got a number")], id="1-boolean"
        ),
        pytest.param(
            Kind.BOOLEAN,
            b'"true"',
            None,
            [("true", "expected a boolean, got a string")],
            id="text-boolean",
        ),
    ],
)
def test_value_that_does_not_fit(
    kind: Kind, value: bytes, cell: Any, errors: list[tuple[Any, str]]
) -> None:
    expected_meta = meta(*[("v", sent, reason) for sent, reason in errors]) if errors else None
    assert one_cell(kind, value) == (cell, expected_meta)


def test_several_misfits_in_one_record_in_column_order() -> None:
    columns = [
        Column("a", Kind.INTEGER),
        Column("ok", Kind.STRING),
        Column("b", Kind.STRING),
        Column("c", Kind.BOOLEAN),
        Column("d", Kind.DATE),
    ]
    # Fields in another order than the columns.
    [row] = rows(columns, [b'{"d":"2024-02-30","c":0,"ok":"fine","b":1.5,"a":"x"}'])
    assert row["ok"] == "fine"
    assert [row["a"], row["b"], row["c"], row["d"]] == [None] * 4
    assert row["_tarsal_meta"] == meta(
        ("a", "x", "expected an integer, got a string"),
        ("b", 1.5, "expected a string, got a number"),
        ("c", 0, "expected a boolean, got a number"),
        ("d", "2024-02-30", "not an ISO 8601 date (YYYY-MM-DD)"),
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            # Both found once msgspec took the record (the fast path): cell by cell, in order.
            b'{"n":9223372036854775808,"t":"12:00:00+02:00"}',
            [("n", 2**63, "integer beyond the 64-bit range"), ("t", "12:00:00+02:00", TIME_OFFSET)],
            id="both-in-arrow",
        ),
        pytest.param(
            # `n` is refused while the record is taken field by field, `t` afterwards.
            b'{"n":"x","t":"12:00:00+02:00"}',
            [("n", "x", "expected an integer, got a string"), ("t", "12:00:00+02:00", TIME_OFFSET)],
            id="n-by-record",
        ),
    ],
)
def test_misfits_found_at_different_steps_stay_in_column_order(
    data: bytes, expected: list[tuple[str, Any, str]]
) -> None:
    columns = [Column("n", Kind.INTEGER), Column("t", Kind.TIME)]
    by_name = {name: (name, value, reason) for name, value, reason in expected}
    for order in (columns, columns[::-1]):
        [row] = rows(order, [data])
        assert row["_tarsal_meta"] == meta(*[by_name[column.name] for column in order])


def test_misfit_recorded_the_same_with_or_without_another_misfit() -> None:
    # The same misfit, alone in its record (msgspec takes the record, the fast path) or next to
    # another one (the record is taken field by field): the same `_tarsal_meta` entry.
    columns = [Column("v", Kind.BIG_NUMBER), Column("other", Kind.INTEGER)]
    [alone] = rows(columns, [b'{"v":0.1234567891,"other":1}'])
    [salvaged] = rows(columns, [b'{"v":0.1234567891,"other":"x"}'])
    entry = ("v", number("0.1234567891"), "number with more than 9 digits after the decimal point")
    assert alone["_tarsal_meta"] == meta(entry)
    assert salvaged["_tarsal_meta"] == meta(
        entry, ("other", "x", "expected an integer, got a string")
    )


def test_misfit_counts_over_several_bodies() -> None:
    stream = StreamColumns([Column("n", Kind.INTEGER), Column("b", Kind.BOOLEAN)])
    write([], [b'{"n":"x","b":1}', b'{"n":1,"b":true}'], stream=stream)
    assert stream.misfits == 2
    # One found once msgspec took the record (Arrow refuses it), one while taking it field by field.
    write([], [b'{"n":9223372036854775808,"b":true}', b'{"n":2,"b":"no"}'], stream=stream)
    assert stream.misfits == 4
    write([], [b'{"n":3,"b":false}'], stream=stream)
    assert stream.misfits == 4
    # A body's rows are counted when converted, whether the body is finished or not.
    body = ParquetBody(stream, ParquetOptions())
    body.compress(line(0, b'{"n":[],"b":{}}'))
    assert stream.misfits == 4
    body.release()
    assert stream.misfits == 6


@pytest.mark.parametrize(
    ("kind", "misfit", "fits", "fitted", "error"),
    [
        pytest.param(
            Kind.INTEGER,
            b"9223372036854775808",
            b"1",
            1,
            (2**63, "integer beyond the 64-bit range"),
            id="int64",
        ),
        pytest.param(
            Kind.BIG_NUMBER,
            b"0.1234567891",
            b"1",
            decimal.Decimal(1),
            (number("0.1234567891"), "number with more than 9 digits after the decimal point"),
            id="big-number",
        ),
        pytest.param(
            Kind.BIG_INTEGER,
            b"1.5",
            b"1",
            decimal.Decimal(1),
            (number("1.5"), "number with more than 0 digits after the decimal point"),
            id="big-integer",
        ),
        pytest.param(
            Kind.TIME,
            b'"12:00:00+02:00"',
            b'"01:00:00"',
            dt.time(1),
            ("12:00:00+02:00", TIME_OFFSET),
            id="time",
        ),
    ],
)
def test_null_cells_next_to_a_value_arrow_refuses_have_no_error(
    kind: Kind, misfit: bytes, fits: bytes, fitted: Any, error: tuple[Any, str]
) -> None:
    # `misfit` passes msgspec but not the Arrow column, which then goes cell by cell: the other
    # cells of the chunk, nulls included, are as they would be without it.
    stream = StreamColumns([Column("v", kind)])
    datas = [b'{"v":' + misfit + b"}", b'{"v":null}', b"{}", b'{"v":' + fits + b"}"]
    table = read(write([], datas, stream=stream))
    assert table.column("v").to_pylist() == [None, None, None, fitted]
    assert table.column("_tarsal_meta").to_pylist() == [meta(("v", *error)), None, None, None]
    assert stream.misfits == 1


# --- Undeclared fields -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "data", "declared", "additional", "errors"),
    [
        pytest.param(
            {"properties": {"a": {"type": "integer"}}},
            b'{"a":1}',
            {"a": 1},
            None,
            None,
            id="none",
        ),
        pytest.param(
            {"properties": {"a": {"type": "integer"}}},
            b'{"x": [1,  2.50 ],"a":1,"y":{"k" : null},"z":null,"w":"\\u00e9\\n"}',
            {"a": 1},
            '{"x":[1,  2.50 ],"y":{"k" : null},"z":null,"w":"\\u00e9\\n"}',
            None,
            id="raw-values",
        ),
        pytest.param(
            {"properties": {"a": {"type": "integer"}}},
            b'{"a":"x","b":1e400}',
            {"a": None},
            '{"b":1e400}',
            meta(("a", "x", "expected an integer, got a string")),
            id="with-misfit",
        ),
        pytest.param(
            {"type": "object"},
            b'{"a":1,"b":{"c":[true]},"d":"2024-01-01"}',
            {},
            '{"a":1,"b":{"c":[true]},"d":"2024-01-01"}',
            None,
            id="no-properties",
        ),
        pytest.param({"type": "object"}, b"{}", {}, None, None, id="no-properties-empty"),
        pytest.param(
            {"properties": {"_tarsal_meta": {"type": "string"}, "a": {"type": "integer"}}},
            b'{"a":2,"_tarsal_meta":"mine"}',
            {"a": 2},
            '{"_tarsal_meta":"mine"}',
            None,
            id="declared-_tarsal_meta",
        ),
        pytest.param(
            {"properties": {"_tarsal_ab_id": {"type": "string"}}},
            b'{"_tarsal_ab_id":"theirs","_tarsal_emitted_at":1}',
            {},
            '{"_tarsal_ab_id":"theirs","_tarsal_emitted_at":1}',
            None,
            id="reserved-names",
        ),
    ],
)
def test_undeclared_fields(
    schema: dict[str, Any],
    data: bytes,
    declared: dict[str, Any],
    additional: str | None,
    errors: str | None,
) -> None:
    [row] = rows(declared_columns(schema), [data])
    assert row == {
        "_tarsal_ab_id": "id-0",
        "_tarsal_emitted_at": EMITTED_AT_TIME,
        **declared,
        "_tarsal_additional_properties": additional,
        "_tarsal_meta": errors,
    }


# --- Fast path against record by record: seeded random corpora -----------------------------

MISSING = b""
# Values that fit (JSON text), per kind; MISSING leaves the field out. msgspec takes them all.
GOOD: dict[Kind, list[bytes]] = {
    Kind.STRING: [
        b'""',
        b'"a"',
        b'"\\u00e9\\n\\"q\\""',
        b'"\\ud83d\\ude80 \xc3\xa9"',
        b'"\\u0000"',
    ],
    Kind.INTEGER: [b"0", b"-1", b"9223372036854775807", b"-9223372036854775808"],
    Kind.BIG_INTEGER: [b"0", b"-7", b"12345678901234567890123", b'"42"', b"9" * 38],
    Kind.BIG_NUMBER: [b"1.5", b"-0.000000001", b'"2.25"', b"12345678901234567.123456789"],
    Kind.NUMBER: [b"1.5", b"-0.0", b"1e308", b"5e-324", b"1180591620717411303424", b"42"],
    Kind.BOOLEAN: [b"true", b"false"],
    Kind.DATE: [b'"2024-02-29"', b'"0001-01-01"', b'"9999-12-31"'],
    Kind.TIMESTAMP_UTC: [
        b'"2024-01-02T03:04:05Z"',
        b'"2024-01-02T03:04:05.5+05:30"',
        b'"2024-01-02T03:04:05"',
        b'"2024-01-02T03:04:05.1234567Z"',
        b'"1999-12-31T23:59:59.9999996Z"',
    ],
    Kind.TIMESTAMP_LOCAL: [
        b'"2024-01-02T03:04:05"',
        b'"2024-01-02T03:04:05-08:00"',
        b'"2024-01-02T03:04:05.9999999"',
    ],
    Kind.TIME: [b'"00:00:00"', b'"23:59:59.999999"', b'"12:34:56.1234567"'],
    Kind.JSON: [b'{"a": [1, 2.50]}', b"[ ]", b'"s"', b"1e400", b"1" * 400, b"true"],
}
# Values that fit but that msgspec refuses: their record is taken field by field.
SLOW_GOOD: dict[Kind, list[bytes]] = {Kind.INTEGER: [b"3.0", b"1e2"]}
# Values that do not fit, per kind: some refused by msgspec, some only by the Arrow column.
BAD: dict[Kind, list[bytes]] = {
    Kind.STRING: [b"5", b"[]"],
    Kind.INTEGER: [b'"x"', b"9223372036854775808", b"1180591620717411303424", b"1.5"],
    Kind.BIG_INTEGER: [b"1.5", b'"abc"', b"true"],
    Kind.BIG_NUMBER: [b"1e-10", b'"abc"'],
    Kind.NUMBER: [b"1e400", b"true", b'"1.5"'],
    Kind.BOOLEAN: [b"1", b'"true"'],
    Kind.DATE: [b'"2024-13-01"', b"20240101"],
    Kind.TIMESTAMP_UTC: [b'"yesterday"', b"0"],
    Kind.TIMESTAMP_LOCAL: [b'"2024-01-02T25:00:00"'],
    Kind.TIME: [b'"12:00:00+02:00"', b'"noon"'],
}
CORPUS_COLUMNS = [Column(kind.name.lower(), kind) for kind in Kind]


def random_record(
    rng: random.Random, bad: frozenset[Kind] = frozenset(), slow: bool = False
) -> bytes:
    fields = []
    for column in CORPUS_COLUMNS:
        pool = [*GOOD[column.kind], b"null", MISSING, *(SLOW_GOOD.get(column.kind, []) * slow)]
        if column.kind in bad:
            pool = BAD[column.kind]
        value = rng.choice(pool)
        if value != MISSING:
            fields.append(b'"%s":%s' % (column.name.encode(), value))
    rng.shuffle(fields)
    return b"{" + b",".join(fields) + b"}"


def without_id(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "_tarsal_ab_id"}


def with_bad_records(rng: random.Random, clean: list[bytes]) -> tuple[list[bytes], list[int]]:
    """`clean` with 1 to 3 records that do not fit inserted at random places; their places."""
    bad = [
        random_record(rng, frozenset(rng.sample(sorted(BAD, key=str), rng.randint(1, 3))))
        for _ in range(rng.randint(1, 3))
    ]
    mixed = [*clean]
    positions = sorted(rng.sample(range(len(clean) + len(bad)), len(bad)))
    for position, record in zip(positions, bad, strict=True):
        mixed.insert(position, record)
    return mixed, positions


def converted(columns: list[Column], datas: list[bytes]) -> list[dict[str, Any]] | str:
    """The rows without their ids, or the exception that stopped the conversion."""
    try:
        return [without_id(row) for row in rows(columns, datas)]
    except Exception as error:
        return f"raised {type(error).__name__}"


def test_clean_records_are_the_same_next_to_records_that_do_not_fit() -> None:
    # A chunk msgspec takes whole (the fast path), and the same records in a chunk that has to go
    # record by record because of records that do not fit: each clean record gets the same row.
    failures: list[str] = []
    stream = StreamColumns(CORPUS_COLUMNS)
    for seed in range(40):
        rng = random.Random(seed)
        clean = [random_record(rng) for _ in range(25)]
        mixed, positions = with_bad_records(rng, clean)
        assert len(stream.decode_lines(b"".join(map(line, range(25), clean)))) == 25
        alone = converted(CORPUS_COLUMNS, clean)
        together = converted(CORPUS_COLUMNS, mixed)
        if isinstance(alone, str) or isinstance(together, str):
            outcomes = [result if isinstance(result, str) else "ok" for result in (alone, together)]
            failures.append(f"seed {seed}: clean chunk {outcomes[0]}, mixed chunk {outcomes[1]}")
            continue
        if any(together[index]["_tarsal_meta"] is None for index in positions):
            failures.append(f"seed {seed}: a record that does not fit has no `_tarsal_meta`")
        kept = [row for index, row in enumerate(together) if index not in positions]
        for record, row_alone, row_together in zip(clean, alone, kept, strict=True):
            failures += [
                f"seed {seed}: {name} {cell!r} became {row_together[name]!r} in {record!r}"
                for name, cell in row_alone.items()
                if cell != row_together[name]
            ]
    assert failures == []


def differing_cells(record: bytes, columns: list[Column], extra: bytes) -> list[tuple[Any, ...]]:
    """(column, value sent, cell alone, cell with `extra` added to the record) where they differ,
    each record in its own object."""
    with_extra = record[:-1] + (b"," if record != b"{}" else b"") + extra + b"}"
    alone, other = converted(columns, [record]), converted(columns, [with_extra])
    if isinstance(alone, str) or isinstance(other, str):
        return [(record.decode(), alone if isinstance(alone, str) else "ok", other)]
    sent = json.loads(record)
    return [
        (column.name, sent.get(column.name), alone[0][column.name], other[0][column.name])
        for column in columns
        if alone[0][column.name] != other[0][column.name]
    ]


@pytest.mark.parametrize(
    "extra",
    [b'"zz_undeclared":1', b'"zz_bad":"x"'],
    ids=["undeclared-field", "misfit-in-another-column"],
)
def test_record_by_record_gives_the_cells_of_the_fast_path(extra: bytes) -> None:
    # The same record, taken by msgspec (fast path) or field by field (`_salvage`, because it
    # also holds an undeclared field or a misfit elsewhere): the same cells.
    columns = [*CORPUS_COLUMNS, Column("zz_bad", Kind.INTEGER)]
    rng = random.Random(1)
    differences: list[tuple[Any, ...]] = []
    for _ in range(60):
        differences += differing_cells(random_record(rng, slow=True), columns, extra)
    assert sorted(set(map(repr, differences))) == []


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        pytest.param(
            Kind.BIG_NUMBER,
            b"12345678901234567.123456789",
            decimal.Decimal("12345678901234567.123456789"),
            id="big-number-17+9-digits",
        ),
        pytest.param(
            Kind.BIG_NUMBER,
            b"0.12345678901234567891",
            None,
            id="big-number-misfit",
        ),
        pytest.param(
            Kind.TIMESTAMP_UTC,
            b'"2024-01-02T03:04:05.9999999Z"',
            dt.datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC),
            id="timestamp-7-fraction-digits",
        ),
        pytest.param(
            Kind.TIMESTAMP_LOCAL,
            b'"2024-01-02T03:04:05.1234567"',
            dt.datetime(2024, 1, 2, 3, 4, 5, 123457),
            id="local-timestamp-7-fraction-digits",
        ),
        pytest.param(
            Kind.TIME,
            b'"03:04:05.9999999"',
            dt.time(3, 4, 5, 999999),  # Python's time parser truncates, on both paths
            id="time-7-fraction-digits",
        ),
    ],
)
def test_cell_does_not_depend_on_an_undeclared_field(
    kind: Kind, value: bytes, expected: Any
) -> None:
    # Alone, msgspec takes the record; with an undeclared field it is taken field by field.
    [alone] = rows([Column("v", kind)], [b'{"v":' + value + b"}"])
    [salvaged] = rows([Column("v", kind)], [b'{"v":' + value + b',"extra":1}'])
    assert (alone["v"], salvaged["v"]) == (expected, expected)
    assert alone["_tarsal_meta"] == salvaged["_tarsal_meta"]


@pytest.mark.parametrize(
    ("kind", "big", "other"),
    [
        pytest.param(Kind.BIG_NUMBER, b"12345678901234567890", b"1e-10", id="big-number"),
        pytest.param(Kind.BIG_INTEGER, b"9" * 38, b"1.5", id="big-integer"),
    ],
)
def test_large_decimal_next_to_a_misfit_in_its_column(kind: Kind, big: bytes, other: bytes) -> None:
    # `other` makes the Arrow column go cell by cell; `big` fits decimal128(38, scale) and must
    # be kept, before or after it in the chunk.
    fits, misfit = b'{"v":' + big + b"}", b'{"v":' + other + b"}"
    for datas in ([fits, misfit], [misfit, fits]):
        cells = [row["v"] for row in rows([Column("v", kind)], datas)]
        assert cells == [decimal.Decimal(big.decode()) if data == fits else None for data in datas]


# --- ParquetBody: memory, row groups, codecs -------------------------------------------------

LINE_BYTES = 1024
CHUNK_ROWS = math.ceil(_CHUNK_BYTES / LINE_BYTES)
SIZED_COLUMNS = [Column("n", Kind.INTEGER), Column("s", Kind.STRING)]


def sized_line(index: int) -> bytes:
    """A line of exactly LINE_BYTES bytes."""
    head = encode_line(b"%08d" % index, EMITTED_AT, b'{"n":%d,"s":""}' % index)
    padding = b"x" * (LINE_BYTES - len(head))
    return encode_line(b"%08d" % index, EMITTED_AT, b'{"n":%d,"s":"%s"}' % (index, padding))


def row_group_sizes(body: bytes) -> list[int]:
    metadata = pq.ParquetFile(io.BytesIO(body)).metadata
    return [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)]


def test_held_bytes_grow_with_compress_and_drop_to_zero_on_release() -> None:
    body = ParquetBody(StreamColumns(SIZED_COLUMNS), ParquetOptions())
    assert body.held_bytes == 0
    fed = 0
    for index in range(10):
        assert body.compress(sized_line(index)) == b""
        fed += LINE_BYTES
        assert body.held_bytes == fed
    assert body.compress(b"") == b""
    assert body.held_bytes == fed
    first = body.release()
    assert body.held_bytes == 0
    assert first[:4] == b"PAR1"
    assert body.release() == b""  # nothing taken since: no row group, no byte
    assert body.held_bytes == 0
    tail = body.finish()
    assert row_group_sizes(first + tail) == [10]
    assert read(first + tail).column("n").to_pylist() == list(range(10))


def test_release_writes_a_row_group_each_time() -> None:
    body = ParquetBody(StreamColumns(SIZED_COLUMNS), ParquetOptions())
    pieces, counts = [], [3, 1, 5]
    index = 0
    for count in counts:
        for _ in range(count):
            pieces.append(body.compress(sized_line(index)))
            index += 1
        pieces.append(body.release())
        done = b"".join(pieces)
        # What was released so far is the start of the file: the footer is still missing.
        assert len(done) > 4 and done[:4] == b"PAR1"
    pieces.append(body.finish())
    data = b"".join(pieces)
    assert row_group_sizes(data) == counts
    assert read(data).column("_tarsal_ab_id").to_pylist() == [f"{i:08d}" for i in range(9)]


def test_small_row_groups_from_compress_alone() -> None:
    total = 2 * CHUNK_ROWS + 100
    body = ParquetBody(StreamColumns(SIZED_COLUMNS), ParquetOptions(row_group_bytes=1))
    pieces, released_at, waiting = [], [], 0
    for index in range(total):
        pieces.append(body.compress(sized_line(index)))
        waiting += 1
        if pieces[-1]:
            released_at.append(index)
            waiting = 0
        assert body.held_bytes == waiting * LINE_BYTES
    assert released_at == [CHUNK_ROWS - 1, 2 * CHUNK_ROWS - 1]
    data = b"".join(pieces) + body.finish()
    assert row_group_sizes(data) == [CHUNK_ROWS, CHUNK_ROWS, 100]
    assert read(data).column("n").to_pylist() == list(range(total))


def test_converted_rows_wait_for_a_full_row_group() -> None:
    # A chunk is converted once it is big enough, but the rows wait (as Arrow data, still held)
    # until they make a row group.
    body = ParquetBody(StreamColumns(SIZED_COLUMNS), ParquetOptions())
    pieces = [body.compress(sized_line(index)) for index in range(CHUNK_ROWS + 5)]
    assert set(pieces) == {b""}
    held = body.held_bytes
    assert held > 5 * LINE_BYTES  # the first chunk's Arrow bytes, and 5 raw lines
    assert body.compress(sized_line(CHUNK_ROWS + 5)) == b""
    assert body.held_bytes == held + LINE_BYTES
    data = body.finish()
    assert body.held_bytes == 0
    assert row_group_sizes(data) == [CHUNK_ROWS + 6]
    assert read(data).column("n").to_pylist() == list(range(CHUNK_ROWS + 6))


def test_finish_without_records_gives_an_empty_valid_file() -> None:
    columns = declared_columns(ALL_KINDS_SCHEMA)
    table = read(write(columns, []))
    assert table.num_rows == 0
    assert table.schema == ALL_KINDS_ARROW


def test_empty_data_record() -> None:
    columns = declared_columns(ALL_KINDS_SCHEMA)
    [row] = rows(columns, [b"{}"])
    assert row == {
        "_tarsal_ab_id": "id-0",
        "_tarsal_emitted_at": EMITTED_AT_TIME,
        **{column.name: None for column in columns},
        "_tarsal_additional_properties": None,
        "_tarsal_meta": None,
    }


@pytest.mark.parametrize(
    ("codec", "name"),
    [("snappy", "SNAPPY"), ("zstd", "ZSTD"), ("gzip", "GZIP"), ("none", "UNCOMPRESSED")],
)
def test_codecs(codec: str, name: str) -> None:
    columns = declared_columns(ALL_KINDS_SCHEMA)
    data = write(columns, [ALL_KINDS_DATA] * 50, ParquetOptions(codec=codec))
    assert read(data).to_pylist() == [
        {**ALL_KINDS_ROW, "_tarsal_ab_id": f"id-{i}"} for i in range(50)
    ]
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    group = metadata.row_group(0)
    assert {group.column(index).compression for index in range(group.num_columns)} == {name}


@pytest.mark.parametrize("dictionary", [True, False])
def test_dictionary_encoding(dictionary: bool) -> None:
    datas = [b'{"n":%d,"s":"%s"}' % (index % 3, b"abc" * (index % 2)) for index in range(200)]
    data = write(SIZED_COLUMNS, datas, ParquetOptions(dictionary_encoding=dictionary))
    group = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0)
    chunks = [group.column(index) for index in range(group.num_columns)]
    dictionary_encodings = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    if dictionary:
        assert all(chunk.has_dictionary_page for chunk in chunks)
        assert all(dictionary_encodings & set(chunk.encodings) for chunk in chunks)
    else:
        assert not any(chunk.has_dictionary_page for chunk in chunks)
        assert not any(dictionary_encodings & set(chunk.encodings) for chunk in chunks)
    assert read(data).column("s").to_pylist() == ["abc" * (index % 2) for index in range(200)]


# --- Huge and odd input ----------------------------------------------------------------------

DIGITS = b"1234567890" * 40  # 400 digits


@pytest.mark.parametrize(
    "value",
    [DIGITS, b"-" + DIGITS, DIGITS + b".5", DIGITS[:1] + b"." + DIGITS[1:] + b"e400", b"1e400"],
    ids=["int", "negative", "fraction", "exponent", "1e400"],
)
def test_huge_numbers_in_a_json_column_keep_their_text(value: bytes) -> None:
    data = b'{"j":' + value + b',"o":{"x":[' + value + b"]}}"
    [row] = rows([Column("j", Kind.JSON), Column("o", Kind.JSON)], [data])
    assert (row["j"], row["o"], row["_tarsal_meta"]) == (
        value.decode(),
        '{"x":[' + value.decode() + "]}",
        None,
    )


def test_huge_integer_in_an_integer_column() -> None:
    assert one_cell(Kind.INTEGER, DIGITS) == (
        None,
        meta(("v", int(DIGITS), "integer beyond the 64-bit range")),
    )


def test_huge_integer_in_float_form_in_an_integer_column() -> None:
    value = DIGITS + b".0"
    assert one_cell(Kind.INTEGER, value) == (None, meta(("v", number(value.decode()), INT_REASON)))


def test_huge_integer_next_to_a_huge_json_value() -> None:
    columns = [Column("j", Kind.JSON), Column("n", Kind.INTEGER), Column("s", Kind.STRING)]
    [row] = rows(columns, [b'{"j":' + DIGITS + b',"n":' + DIGITS + b',"s":"kept"}'])
    assert (row["j"], row["n"], row["s"]) == (DIGITS.decode(), None, "kept")
    assert row["_tarsal_meta"] == meta(("n", int(DIGITS), "integer beyond the 64-bit range"))


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        pytest.param(Kind.NUMBER, DIGITS, FLOAT_RANGE, id="int-in-number"),
        pytest.param(Kind.NUMBER, DIGITS + b".5", FLOAT_RANGE, id="fraction-in-number"),
        pytest.param(
            Kind.BIG_INTEGER,
            DIGITS,
            "number with more than 38 digits before the decimal point",
            id="int-in-big-integer",
        ),
        pytest.param(
            Kind.BIG_INTEGER,
            b"9" * 39,
            "number with more than 38 digits before the decimal point",
            id="39-digits-in-big-integer",
        ),
        pytest.param(
            Kind.BIG_NUMBER,
            DIGITS,
            "number with more than 29 digits before the decimal point",
            id="int-in-big-number",
        ),
        pytest.param(
            Kind.BIG_NUMBER,
            b"1e400",
            "number with more than 29 digits before the decimal point",
            id="1e400-in-big-number",
        ),
    ],
)
def test_huge_numbers_that_do_not_fit(kind: Kind, value: bytes, reason: str) -> None:
    cell, text = one_cell(kind, value)
    assert cell is None and text is not None
    [entry] = json.loads(text)["errors"]
    assert (entry["field"], entry["reason"]) == ("v", reason)
    # The value as sent: the number's exact text, verbatim.
    assert f'"value":{value.decode()},' in text


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_deeply_nested_json_value() -> None:
    value = nested(500)
    [row] = rows([Column("j", Kind.JSON)], [b'{"j":' + value + b"}"])
    assert (row["j"], row["_tarsal_additional_properties"], row["_tarsal_meta"]) == (
        value.decode(),
        None,
        None,
    )


def test_deeply_nested_undeclared_field_and_misfit() -> None:
    value = nested(500)
    columns = [Column("n", Kind.INTEGER), Column("j", Kind.JSON)]
    data = b'{"n":' + value + b',"j":' + value + b',"x":' + value + b"}"
    [row] = rows(columns, [data])
    assert row["j"] == value.decode()
    assert row["_tarsal_additional_properties"] == '{"x":' + value.decode() + "}"
    assert row["_tarsal_meta"] == (
        '{"errors":[{"field":"n","value":'
        + value.decode()
        + ',"reason":"expected an integer, got an object"}]}'
    )


def test_deepest_record_the_connector_reads_is_written() -> None:
    # messages.decode takes a record nested up to about the recursion limit; the Parquet body
    # must not fail on one it took (a sync never fails on a value).
    def envelope(data: bytes) -> bytes:
        return b'{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":' + data + b"}}"

    depth = sys.getrecursionlimit()
    while depth > 0:
        try:
            decode(envelope(b'{"j":' + nested(depth) + b"}"), 1)
            break
        except Exception:
            depth -= 1
    value = nested(depth)
    assert depth > 500
    json_column = [Column("j", Kind.JSON)]
    for columns, data in [
        (json_column, b'{"j":' + value + b"}"),
        (json_column, b'{"j":' + value + b',"x":1}'),
        ([*json_column, Column("n", Kind.INTEGER)], b'{"j":' + value + b',"n":"x"}'),
    ]:
        [row] = rows(columns, [data])
        assert row["j"] == value.decode()


@pytest.mark.parametrize(
    ("text", "string"),
    [
        (b'"\\u00e9\\n\\"q\\""', 'é\n"q"'),
        (b'"\xc3\xa9\\t\\\\ \\/ \\b\\f\\r"', "é\t\\ / \b\f\r"),
        (b'"\\ud83d\\ude80\xf0\x9f\x9a\x80 \xe7\x94\xa8\xe6\x88\xb7"', "🚀🚀 用户"),
        (b'"\\u0000"', "\x00"),
        (b'""', ""),
    ],
)
def test_unicode_and_escapes(text: bytes, string: str) -> None:
    columns = [Column("s", Kind.STRING), Column("j", Kind.JSON)]
    # Alone (fast path), and with an undeclared field (record by record).
    for data in (b'{"s":%s,"j":%s}' % (text, text), b'{"s":%s,"j":%s,"x":%s}' % (text, text, text)):
        [row] = rows(columns, [data])
        assert (row["s"], row["j"]) == (string, text.decode())
        if b'"x"' in data:
            assert row["_tarsal_additional_properties"] == '{"x":' + text.decode() + "}"


def test_column_names_msgspec_cannot_match_still_fill_their_columns() -> None:
    # msgspec cannot rename a Struct field to a key holding `"`, a backslash or a control
    # character: such a stream goes record by record, with the same cells.
    columns = [Column('q"x', Kind.INTEGER), Column("back\\slash", Kind.STRING)]
    data = json.dumps({'q"x': 7, "back\\slash": "b", "more": 1}).encode()
    [row] = rows(columns, [data])
    assert (row['q"x'], row["back\\slash"], row["_tarsal_additional_properties"]) == (
        7,
        "b",
        '{"more":1}',
    )


def test_an_emitted_at_beyond_the_time_stamp_range_is_null_and_kept_in_meta() -> None:
    # The intake takes any JSON number as emitted_at (JSONL keeps its text); Arrow's milliseconds
    # stop at 2**63 - 1.
    body = ParquetBody(StreamColumns([Column("v", Kind.INTEGER)]), ParquetOptions())
    lines = [encode_line(b"a", b"1700000000123", b'{"v":1}')]
    lines.append(encode_line(b"b", b"10000000000000000000", b'{"v":2}'))
    data = b"".join(body.compress(text) for text in lines) + body.finish()
    table = read(data)
    assert table.column("v").to_pylist() == [1, 2]
    assert table.column("_tarsal_emitted_at").to_pylist() == [
        dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
        None,
    ]
    assert table.column("_tarsal_meta").to_pylist() == [
        None,
        meta(("_tarsal_emitted_at", 10**19, "beyond the time stamp range")),
    ]


def test_a_wide_schema_of_missing_fields_converts_by_cells_not_bytes() -> None:
    # 1,000 declared columns and records holding one of them: converting by raw bytes alone
    # would build 1 MiB of such records (16k records, 16M cells) at once.
    columns = [Column(f"f{index}", Kind.INTEGER) for index in range(1000)]
    body = ParquetBody(StreamColumns(columns), ParquetOptions())
    texts = [encode_line(b"id", b"1", b'{"f0":%d}' % n) for n in range(300)]
    body.compress(b"".join(texts))
    assert sum(map(len, texts)) < 64 * 1024  # far below the 1 MiB of raw lines
    assert body._lines == [] and len(body._batches) == 1  # converted: 300 x 1,004 cells
    assert read(body.finish()).column("f0").to_pylist() == list(range(300))


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "string", "airbyte_type": ["date"]},
        {"type": "string", "format": {"pattern": "x"}},
        {"type": ["string", {"const": 1}]},
        {"type": "number", "airbyte_type": {"x": 1}},
    ],
)
def test_malformed_schema_hints_do_not_fail_the_sync(prop: dict[str, Any]) -> None:
    # Hints of the wrong JSON type are ignored (or the column is JSON text); never a TypeError.
    assert column_kind(prop) in (Kind.STRING, Kind.NUMBER, Kind.JSON)
