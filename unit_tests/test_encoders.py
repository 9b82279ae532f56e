"""Encoders: every line parses back, with its standard parser, to exactly what came in."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pytest

from destination_s3.config import OutputFormat
from destination_s3.encoders import (
    RecordIds,
    encode_csv_no_flattening,
    encode_jsonl,
    encoder_for,
    root_level_properties,
)
from unit_tests.speedups_support import RootCsv, require_speedups

RootCsvFactory = Callable[[Sequence[str]], RootCsv]


@pytest.fixture(params=["python", "c"])
def root_csv(request: pytest.FixtureRequest) -> RootCsvFactory:
    """Every root-level CSV test runs against both encoders: the same bytes are expected."""
    accelerated = request.param == "c"
    if accelerated:
        require_speedups()
    return lambda schema_properties: RootCsv(schema_properties, accelerated)


AB_ID = "4f1c2e9a-8b7d-4c3e-9f10-2a3b4c5d6e7f"
EMITTED_AT = "1700000000123"

JOHN_DOE = {"user_id": 123, "name": {"first": "John", "last": "Doe"}}
JOHN_DOE_SCHEMA = {
    "type": "object",
    "properties": {
        "user_id": {"type": "integer"},
        "name": {"type": "object", "properties": {"first": {}, "last": {}}},
    },
}

TRICKY_DATA: list[dict[str, Any]] = [
    JOHN_DOE,
    {},
    {"quote": 'say "hi"', "double": '""', "lone": '"'},
    {"comma": "a,b,c", "semicolon": "a;b"},
    {"newline": "line1\nline2", "crlf": "a\r\nb", "cr": "a\rb", "tab": "a\tb"},
    {"unicode": "café 用户 🚀 Ünïcödé", "é": "key too"},
    {"backslash": "C:\\path\\", "escaped_quote": '\\"'},
    {"nested": {"list": [1, "two", None, True, {"x": [[]]}]}, "empty": {"a": {}}},
    {"numbers": [0, -1, 1.5, 1e100, 2**70]},
    {"csv_like": '"a","b"\r\n"c"'},
]


def _raw(data: dict[str, Any], *, ascii_only: bool = False) -> bytes:
    # Compact, as Airbyte sources serialise records.
    return json.dumps(data, ensure_ascii=ascii_only, separators=(",", ":")).encode()


def _csv_rows(text: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.decode("utf-8"), newline="")))


# --- JSONL ---------------------------------------------------------------------------------


def test_jsonl_golden_line_for_john_doe() -> None:
    data = b'{"user_id":123,"name":{"first":"John","last":"Doe"}}'
    line = encode_jsonl(AB_ID.encode(), EMITTED_AT.encode(), data)
    assert line == (
        b'{"_tarsal_metadata":{"_tarsal_ab_id":"' + AB_ID.encode() + b'",'
        b'"_tarsal_emitted_at":"1700000000123"},'
        b'"data":{"user_id":123,"name":{"first":"John","last":"Doe"}}}\n'
    )


@pytest.mark.parametrize("data", TRICKY_DATA)
@pytest.mark.parametrize("ascii_only", [False, True])
def test_jsonl_line_parses_back_to_metadata_and_data(
    data: dict[str, Any], ascii_only: bool
) -> None:
    line = encode_jsonl(AB_ID.encode(), EMITTED_AT.encode(), _raw(data, ascii_only=ascii_only))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    parsed = json.loads(line)
    assert list(parsed) == ["_tarsal_metadata", "data"]
    assert parsed == {
        "_tarsal_metadata": {"_tarsal_ab_id": AB_ID, "_tarsal_emitted_at": EMITTED_AT},
        "data": data,
    }
    # The emitted-at time is a string, not a number.
    assert isinstance(parsed["_tarsal_metadata"]["_tarsal_emitted_at"], str)


def test_jsonl_copies_the_source_bytes_of_data_unchanged() -> None:
    data = b'{"big": 123456789012345678901234567890, "f": 1.0, "e": 1E+2, "u": "\\u00e9"}'
    line = encode_jsonl(AB_ID.encode(), EMITTED_AT.encode(), data)
    assert data in line
    parsed = json.loads(line, parse_float=str)
    assert parsed["data"] == {
        "big": 123456789012345678901234567890,
        "f": "1.0",
        "e": "1E+2",
        "u": "é",
    }


# --- CSV without flattening ----------------------------------------------------------------


def test_csv_no_flattening_header_and_golden_row() -> None:
    header, encode = encoder_for(OutputFormat.CSV_NO_FLATTENING, ["ignored"])
    assert header == b"_tarsal_metadata,data\r\n"
    row = encode(AB_ID.encode(), EMITTED_AT.encode(), b'{"user_id":123,"name":{"first":"John"}}')
    assert row == (
        b'"{""_tarsal_ab_id"":""'
        + AB_ID.encode()
        + b'"",""_tarsal_emitted_at"":""1700000000123""}",'
        b'"{""user_id"":123,""name"":{""first"":""John""}}"\r\n'
    )


@pytest.mark.parametrize("data", TRICKY_DATA)
@pytest.mark.parametrize("ascii_only", [False, True])
def test_csv_no_flattening_row_parses_back(data: dict[str, Any], ascii_only: bool) -> None:
    header, _ = encoder_for(OutputFormat.CSV_NO_FLATTENING, [])
    row = encode_csv_no_flattening(
        AB_ID.encode(), EMITTED_AT.encode(), _raw(data, ascii_only=ascii_only)
    )
    assert row.endswith(b"\r\n")
    rows = _csv_rows(header + row)
    assert rows[0] == ["_tarsal_metadata", "data"]
    assert len(rows) == 2
    metadata, data_text = rows[1]
    assert json.loads(metadata) == {"_tarsal_ab_id": AB_ID, "_tarsal_emitted_at": EMITTED_AT}
    assert json.loads(data_text) == data


def test_csv_no_flattening_many_rows_in_one_file_stay_separate() -> None:
    header, encode = encoder_for(OutputFormat.CSV_NO_FLATTENING, [])
    body = header + b"".join(
        encode(f"id-{index}".encode(), EMITTED_AT.encode(), _raw(data))
        for index, data in enumerate(TRICKY_DATA)
    )
    rows = _csv_rows(body)[1:]
    assert [json.loads(data_text) for _, data_text in rows] == TRICKY_DATA
    assert [json.loads(meta)["_tarsal_ab_id"] for meta, _ in rows] == [
        f"id-{index}" for index in range(len(TRICKY_DATA))
    ]


# --- CSV with root-level flattening --------------------------------------------------------


def _root_level(
    root_csv: RootCsvFactory, schema_properties: list[str], data: dict[str, Any]
) -> dict[str, str]:
    encoder = root_csv(schema_properties)
    rows = _csv_rows(encoder.header() + encoder(AB_ID.encode(), EMITTED_AT.encode(), _raw(data)))
    assert len(rows) == 2
    assert len(rows[0]) == len(rows[1])
    return dict(zip(rows[0], rows[1], strict=True))


def test_root_level_header_follows_schema_order(root_csv: RootCsvFactory) -> None:
    encoder = root_csv(["zeta", "alpha", "mid", "alpha"])
    assert encoder.header() == (
        b"_tarsal_ab_id,_tarsal_emitted_at,zeta,alpha,mid,_tarsal_additional_properties\r\n"
    )


def test_root_level_header_quotes_awkward_column_names(root_csv: RootCsvFactory) -> None:
    encoder = root_csv(["a,b", 'q"x', "é"])
    assert _csv_rows(encoder.header())[0] == [
        "_tarsal_ab_id",
        "_tarsal_emitted_at",
        "a,b",
        'q"x',
        "é",
        "_tarsal_additional_properties",
    ]


def test_root_level_writes_nested_values_as_the_source_wrote_them(root_csv: RootCsvFactory) -> None:
    encoder = root_csv(["n", "x", "f"])
    data = b'{"n": {"a": [1, 2.50, "q\\"r"]}, "x": 12345678901234567890123, "f": 1E5}'
    row = encoder(b"id", b"1", data)
    assert row == b'id,1,"{""a"": [1, 2.50, ""q\\""r""]}",12345678901234567890123,1E5,\r\n'


def test_root_level_column_names_msgspec_cannot_match_still_fill_their_cells(
    root_csv: RootCsvFactory,
) -> None:
    names = ['q"x', "back\\slash", "tab\t"]
    encoder = root_csv(names)
    data = json.dumps({'q"x': "a", "back\\slash": 2, "tab\t": None, "more": 1}).encode()
    assert encoder(b"id", b"1", data) == b'id,1,a,2,,"{""more"":1}"\r\n'


def test_root_level_john_doe(root_csv: RootCsvFactory) -> None:
    encoder = root_csv(root_level_properties(JOHN_DOE_SCHEMA))
    row = encoder(AB_ID.encode(), EMITTED_AT.encode(), _raw(JOHN_DOE))
    assert row == (
        AB_ID.encode() + b',1700000000123,123,"{""first"":""John"",""last"":""Doe""}",\r\n'
    )


def test_root_level_values(root_csv: RootCsvFactory) -> None:
    schema = ["s", "i", "f", "big_f", "neg", "t", "f2", "null", "missing", "obj", "arr", "empty"]
    data = {
        "s": 'a "quoted", comma\nand newline é',
        "i": 42,
        "f": 1.5,
        "big_f": 1e100,
        "neg": -7,
        "t": True,
        "f2": False,
        "null": None,
        "obj": {"k": [1, {"n": None}]},
        "arr": [1, "x", None],
        "empty": "",
    }
    row = _root_level(root_csv, schema, data)
    assert row["_tarsal_ab_id"] == AB_ID
    assert row["_tarsal_emitted_at"] == EMITTED_AT
    assert row["s"] == data["s"]
    assert row["i"] == "42"
    assert row["f"] == "1.5"
    assert json.loads(row["big_f"]) == 1e100
    assert row["neg"] == "-7"
    assert row["t"] == "true"
    assert row["f2"] == "false"
    assert row["null"] == ""
    assert row["missing"] == ""
    assert json.loads(row["obj"]) == data["obj"]
    assert json.loads(row["arr"]) == data["arr"]
    assert row["empty"] == ""
    assert row["_tarsal_additional_properties"] == ""


def test_root_level_numbers_are_json_numbers(root_csv: RootCsvFactory) -> None:
    row = _root_level(root_csv, ["a", "b", "c", "d"], {"a": 0, "b": 1.0, "c": 0.1, "d": -2.5e-8})
    assert [json.loads(row[name]) for name in "abcd"] == [0, 1.0, 0.1, -2.5e-8]


def test_root_level_keeps_integers_beyond_64_bits_exact(root_csv: RootCsvFactory) -> None:
    """A NUMERIC(38) id must reach the CSV with every digit, as it does in JSONL, both in its own
    column and inside `_tarsal_additional_properties`."""
    big = 123456789012345678901234567890
    row = _root_level(
        root_csv, ["id", "u64_plus_one"], {"id": big, "u64_plus_one": 2**64, "extra": big}
    )
    assert (row["id"], row["u64_plus_one"], row["_tarsal_additional_properties"]) == (
        "123456789012345678901234567890",
        "18446744073709551616",
        '{"extra":123456789012345678901234567890}',
    )


def test_root_level_undeclared_fields_go_to_additional_properties(root_csv: RootCsvFactory) -> None:
    data = {"declared": 1, "extra": {"deep": [1, 2]}, "other": "x,y", "flag": False}
    row = _root_level(root_csv, ["declared"], data)
    assert row["declared"] == "1"
    assert json.loads(row["_tarsal_additional_properties"]) == {
        "extra": {"deep": [1, 2]},
        "other": "x,y",
        "flag": False,
    }


def test_root_level_schema_property_named_like_a_metadata_column_is_undeclared(
    root_csv: RootCsvFactory,
) -> None:
    schema = ["_tarsal_ab_id", "name", "_tarsal_emitted_at", "_tarsal_additional_properties"]
    encoder = root_csv(schema)
    assert encoder.columns == ["name"]
    header = _csv_rows(encoder.header())[0]
    assert header == [
        "_tarsal_ab_id",
        "_tarsal_emitted_at",
        "name",
        "_tarsal_additional_properties",
    ]
    assert len(set(header)) == len(header)
    data = {
        "_tarsal_ab_id": "from-source",
        "name": "n",
        "_tarsal_emitted_at": 5,
        "_tarsal_additional_properties": {"a": 1},
    }
    row = _root_level(root_csv, schema, data)
    assert row["_tarsal_ab_id"] == AB_ID
    assert row["_tarsal_emitted_at"] == EMITTED_AT
    assert row["name"] == "n"
    assert json.loads(row["_tarsal_additional_properties"]) == {
        "_tarsal_ab_id": "from-source",
        "_tarsal_emitted_at": 5,
        "_tarsal_additional_properties": {"a": 1},
    }


def test_root_level_rows_in_one_file_parse_back(root_csv: RootCsvFactory) -> None:
    encoder = root_csv(["quote", "newline", "unicode"])
    body = encoder.header() + b"".join(
        encoder(AB_ID.encode(), EMITTED_AT.encode(), _raw(data)) for data in TRICKY_DATA
    )
    rows = _csv_rows(body)
    assert len(rows) == 1 + len(TRICKY_DATA)
    for data, values in zip(TRICKY_DATA, rows[1:], strict=True):
        row = dict(zip(rows[0], values, strict=True))
        for name in ("quote", "newline", "unicode"):
            assert row[name] == data.get(name, "")
        extra = {k: v for k, v in data.items() if k not in ("quote", "newline", "unicode")}
        got = row["_tarsal_additional_properties"]
        assert (json.loads(got) if got else {}) == extra


def test_root_level_properties() -> None:
    schema: dict[str, Any] = {"properties": {"b": {}, "a": {}, "c": {}}}
    assert root_level_properties(schema) == ["b", "a", "c"]
    assert root_level_properties({"type": "object"}) == []
    assert root_level_properties({"properties": ["a"]}) == []
    assert root_level_properties(None) == []
    assert root_level_properties(True) == []


# --- The seed example in every format ------------------------------------------------------


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_john_doe_in_every_format(output_format: OutputFormat) -> None:
    header, encode = encoder_for(output_format, root_level_properties(JOHN_DOE_SCHEMA))
    line = encode(AB_ID.encode(), EMITTED_AT.encode(), _raw(JOHN_DOE))
    metadata = {"_tarsal_ab_id": AB_ID, "_tarsal_emitted_at": EMITTED_AT}
    if output_format is OutputFormat.JSONL:
        assert header == b""
        assert json.loads(line) == {"_tarsal_metadata": metadata, "data": JOHN_DOE}
    elif output_format is OutputFormat.CSV_NO_FLATTENING:
        rows = _csv_rows(header + line)
        assert rows[0] == ["_tarsal_metadata", "data"]
        assert json.loads(rows[1][0]) == metadata
        assert json.loads(rows[1][1]) == JOHN_DOE
    else:
        rows = _csv_rows(header + line)
        assert rows == [
            [
                "_tarsal_ab_id",
                "_tarsal_emitted_at",
                "user_id",
                "name",
                "_tarsal_additional_properties",
            ],
            [AB_ID, EMITTED_AT, "123", '{"first":"John","last":"Doe"}', ""],
        ]
        assert json.loads(rows[1][3]) == JOHN_DOE["name"]


def test_output_format_extension_and_content_type() -> None:
    assert OutputFormat.JSONL.extension == "jsonl"
    assert OutputFormat.CSV_NO_FLATTENING.extension == "csv"
    assert OutputFormat.CSV_ROOT_LEVEL.extension == "csv"
    assert OutputFormat.JSONL.content_type == "application/jsonl"
    assert OutputFormat.CSV_ROOT_LEVEL.content_type == "text/csv; charset=utf-8"


# --- Record ids ----------------------------------------------------------------------------


@pytest.fixture(params=["python", "c"])
def record_ids(request: pytest.FixtureRequest) -> Callable[..., RecordIds]:
    """Every id test runs against both generators (the Python one and _record_ids.c)."""
    accelerated = request.param == "c"
    if accelerated:
        require_speedups()
    return lambda *random_bytes: RecordIds(*random_bytes, accelerated=accelerated)


def test_record_ids_are_unique_random_uuid4_across_batches(
    record_ids: Callable[..., RecordIds],
) -> None:
    ids = record_ids()
    drawn = [ids.next() for _ in range(3 * 4096 + 17)]
    assert len(set(drawn)) == len(drawn)
    for raw in drawn:
        assert isinstance(raw, bytes)
        text = raw.decode("ascii")
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # canonical, lowercase, hyphenated


def test_record_ids_use_every_variant_digit(record_ids: Callable[..., RecordIds]) -> None:
    # The random part is drawn once per block of 65,536 ids; every source starts a new block.
    variant_digits = {record_ids().next().decode()[19] for _ in range(400)}
    assert variant_digits == set("89ab")


def test_record_ids_stay_unique_and_valid_across_a_block_boundary(
    record_ids: Callable[..., RecordIds],
) -> None:
    ids = record_ids()
    drawn = [ids.next() for _ in range(65_536 + 10)]
    assert len(set(drawn)) == len(drawn)
    assert drawn[65_536][:-4] != drawn[0][:-4]  # a new random block
    for text in (drawn[0], drawn[65_535], drawn[65_536]):
        parsed = uuid.UUID(text.decode())
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_two_record_id_sources_do_not_repeat_each_other(
    record_ids: Callable[..., RecordIds],
) -> None:
    first, second = record_ids(), record_ids()
    assert not {first.next() for _ in range(5000)} & {second.next() for _ in range(5000)}


def _seeded_random_bytes(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return lambda count: rng.randbytes(count)


def test_c_record_ids_equal_the_python_ones_from_the_same_random_bytes() -> None:
    """Over three blocks of 65,536 and 50 random sources: every variant digit, every suffix."""
    require_speedups()
    for seed in range(50):
        count = 3 * 65_536 + 5 if seed < 2 else 300
        python = RecordIds(_seeded_random_bytes(seed), accelerated=False).next
        c = RecordIds(_seeded_random_bytes(seed), accelerated=True).next
        assert [c() for _ in range(count)] == [python() for _ in range(count)], seed


def test_c_record_ids_refuse_a_random_source_outside_the_contract() -> None:
    require_speedups()
    from destination_s3 import _speedups

    with pytest.raises(TypeError, match="14 bytes"):
        _speedups.UuidIds(lambda count: b"short")()
    with pytest.raises(KeyError):
        _speedups.UuidIds(lambda count: {}[count])()
    with pytest.raises(TypeError):
        _speedups.UuidIds(42)
    with pytest.raises(TypeError):
        _speedups.UuidIds(lambda count: bytes(count))(1)  # type: ignore[call-arg]
    with pytest.raises(RuntimeError, match="not initialised"):
        _speedups.UuidIds.__new__(_speedups.UuidIds)()


def test_root_level_csv_keeps_numbers_msgspec_cannot_hold_as_the_source_wrote_them(
    root_csv: RootCsvFactory,
) -> None:
    # 1e400 is beyond a double (it used to become infinity, written `null`); 5,000 digits are
    # beyond Python's int-from-text limit. Every cell keeps the source's text.
    big = "7" * 5000
    encoder = root_csv(["huge", "far", "nested"])
    data = f'{{"huge":{big},"far":1e400,"nested":{{"x":-2.50E+999,"n":[1,2.0]}},"z":1e-400}}'
    line = encoder(b"id", b"1", data.encode())
    assert line.decode() == (
        f'id,1,{big},1e400,"{{""x"":-2.50E+999,""n"":[1,2.0]}}","{{""z"":1e-400}}"\r\n'
    )


# Characters that matter to CSV quoting or JSON escaping, and some that do not.
_NASTY = [",", '"', "\r", "\n", "\\", "/", " ", "\t", "\x00", "\x1f", "\x7f", "\x85", "\u2028"]
_NASTY += ["a", "Z", "0", "é", "用", "😀", "'", ";", "{", "}", "[", "]", ":"]


def _json_spelling(rng: random.Random) -> tuple[str, str]:
    """(JSON text as a source may write it, the CSV cell text it must give)."""
    kind = rng.randrange(7)
    if kind == 0:
        text = "".join(rng.choices(_NASTY, k=rng.randrange(0, 12)))
        return json.dumps(text, ensure_ascii=rng.random() < 0.5), text
    if kind == 1:  # numbers keep their spelling
        spelling = rng.choice(["0", "-7", "1.50", "1E5", "-2.5e-8", "12345678901234567890123"])
        return spelling, spelling
    if kind == 2:
        spelling = rng.choice(["true", "false"])
        return spelling, spelling
    if kind == 3:
        return "null", ""
    nested = [1, {"k": "".join(rng.choices(_NASTY, k=4))}, None, "x,y"][: rng.randrange(0, 5)]
    separators = rng.choice([(",", ":"), (", ", ": ")])
    text = json.dumps(nested if kind == 4 else {"v": nested}, separators=separators)
    return text, text


def test_root_level_rows_match_the_csv_module_on_a_random_corpus(root_csv: RootCsvFactory) -> None:
    # Differential: the encoder builds rows as bytes and quotes per cell; the csv module, given
    # the cells the record must give, is the reference for every byte of the row.
    rng = random.Random(20261129)
    columns = ["a", "b", "c", "d"]
    encoder = root_csv(columns)
    for _ in range(20_000):
        fields: dict[str, tuple[str, str]] = {}
        for name in rng.sample([*columns, "x", "y,z", 'q"'], rng.randrange(0, 7)):
            fields[name] = _json_spelling(rng)
        data = "{" + ",".join(f"{json.dumps(k)}:{v[0]}" for k, v in fields.items()) + "}"
        extra = {k: msgspec.Raw(v[0].encode()) for k, v in fields.items() if k not in columns}
        cells = [fields[name][1] if name in fields else "" for name in columns]
        expected = io.StringIO()
        csv.writer(expected, lineterminator="\r\n").writerow(
            ["id", "7", *cells, msgspec.json.encode(extra).decode() if extra else ""]
        )
        assert encoder(b"id", b"7", data.encode()) == expected.getvalue().encode(), data


def test_record_ids_build_their_suffix_table_on_the_first_id_not_at_import() -> None:
    # Building it costs about 25 ms: a sync without records (and `spec`, `check`) must not pay.
    probe = (
        "from destination_s3 import encoders\n"
        "ids = encoders.RecordIds(accelerated=False)\n"  # the C generator has no table
        "before = encoders._suffixes.cache_info().currsize\n"
        "ids.next()\n"
        "print(before, encoders._suffixes.cache_info().currsize)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", "1"]
