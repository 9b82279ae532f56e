"""The C root-level CSV encoder against the pure-Python one: same bytes or same error, always.

The corpus (speedups_corpus.py, seeded) goes through what the connector does to a stdin line —
envelope decode, the `data` checks and UTF-8 repair, then the encoder — once with each encoder.
`make asan` runs this file with the C encoder built under AddressSanitizer.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from destination_s3.encoders import LineEncoder, RootLevelCsvEncoder
from destination_s3.errors import InputError
from destination_s3.messages import decode, record_data
from unit_tests.speedups_corpus import COLUMNS, corpus, valid_object
from unit_tests.speedups_support import require_speedups

REPO_ROOT = Path(__file__).resolve().parent.parent
CASES = 100_000
AB_ID = b"4f1c2e9a-8b7d-4c3e-9f10-2a3b4c5d6e7f"
EMITTED_AT = b"1700000000123"
# Bytes after a fenced input that would change the row if the encoder read past its end.
FENCE = b'"}]", "\\u0041"}'

Outcome = tuple[str, bytes | str]


@pytest.fixture(scope="module")
def c_encoder() -> Callable[[Callable[[bytes, bytes, bytes], bytes]], LineEncoder]:
    """Builds a C encoder over COLUMNS in front of a given fallback."""
    require_speedups()
    from destination_s3 import _speedups

    return lambda fallback: _speedups.CsvRowEncoder(COLUMNS, fallback)


def through_connector(encode: LineEncoder, data: bytes) -> Outcome:
    """What the connector makes of a RECORD line carrying `data`: a row, or the error it stops
    with (the same steps as Intake._take_line)."""
    line = b'{"type":"RECORD","record":{"stream":"s","emitted_at":1700000000123,"data":'
    line += data + b"}}"
    try:
        envelope = decode(line, 7)
        assert envelope.record is not None
        body, _ = record_data(envelope.record, 7, line)
    except InputError as refused:
        return "refused", str(refused)
    try:
        return "row", encode(AB_ID, EMITTED_AT, body)
    except (ValueError, msgspec.DecodeError, RecursionError) as invalid:
        return "error", f"{type(invalid).__name__}: {invalid}"


def test_c_encoder_matches_python_on_a_seeded_corpus_of_100k_cases(
    c_encoder: Callable[[Callable[[bytes, bytes, bytes], bytes]], LineEncoder],
) -> None:
    python = RootLevelCsvEncoder(COLUMNS)
    left_to_python = 0

    def fallback(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
        nonlocal left_to_python
        left_to_python += 1
        return python(ab_id, emitted_at, data)

    accelerated = c_encoder(fallback)
    outcomes = {"row": 0, "refused": 0, "error": 0}  # error: the encoder raised
    for data in corpus(seed=20261207, count=CASES):
        expected = through_connector(python, data)
        assert through_connector(accelerated, data) == expected, data
        outcomes[expected[0]] += 1
    # The corpus reaches every outcome, and the C encoder itself wrote most rows.
    assert sum(outcomes.values()) == CASES
    assert outcomes["row"] > CASES // 2
    assert outcomes["refused"] > CASES // 10
    assert left_to_python < outcomes["row"] // 2


def test_c_encoder_never_reads_past_its_input_and_agrees_on_every_valid_object(
    c_encoder: Callable[[Callable[[bytes, bytes, bytes], bytes]], LineEncoder],
) -> None:
    """Raw corpus bytes straight into the C encoder, fenced by bytes that would change the row
    if read, and in a buffer of exactly their size (under `make asan`, a read past it is
    reported): valid JSON objects (as the connector hands them) must give the Python row;
    anything else may give any row, but must not crash or read outside the input."""
    python = RootLevelCsvEncoder(COLUMNS)
    left = b"left to python"
    accelerated = c_encoder(lambda *_: left)
    compared = 0
    for data in corpus(seed=7, count=CASES // 4):
        fenced = memoryview(data + FENCE)[: len(data)]
        row = accelerated(AB_ID, EMITTED_AT, fenced)  # type: ignore[arg-type]
        exact = (ctypes.c_char * len(data)).from_buffer_copy(data)  # no trailing NUL
        assert row == accelerated(AB_ID, EMITTED_AT, exact) == accelerated(AB_ID, EMITTED_AT, data)  # type: ignore[arg-type]
        try:
            valid = isinstance(json.loads(data), dict) and msgspec.json.decode(data) is not None
        except (ValueError, msgspec.DecodeError, RecursionError):
            valid = False
        if valid and row != left:
            assert row == python(AB_ID, EMITTED_AT, data), data
            compared += 1
    assert compared > CASES // 20


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{}", b"id,1" + b"," * 11 + b",\r\n"),
        (b'{"id":1,"name":"a,b"}', b'id,1,1,"a,b"' + b"," * 9 + b",\r\n"),
        (b'{"name":"say \\"hi\\""}', b'id,1,,"say ""hi"""' + b"," * 9 + b",\r\n"),
        (b'{"name":"x\\ny"}', b'id,1,,"x\ny"' + b"," * 9 + b",\r\n"),
        (b'{"name":"\\ud83d\\ude00\\u00e9\\/"}', "id,1,,😀é/".encode() + b"," * 9 + b",\r\n"),
        (b'{"n":null,"s":"","t":true}', b"id,1" + b"," * 10 + b"true,,\r\n"),
        (b'{ "nested" : [1, {"k": "v"}] }', b"id,1" + b"," * 7 + b'"[1, {""k"": ""v""}]",,,,,\r\n'),
    ],
)
def test_c_encoder_golden_rows(
    c_encoder: Callable[[Callable[[bytes, bytes, bytes], bytes]], LineEncoder],
    data: bytes,
    expected: bytes,
) -> None:
    def refuse(*_: bytes) -> bytes:
        raise AssertionError("the C encoder should have written this row itself")

    python = RootLevelCsvEncoder(COLUMNS)
    assert c_encoder(refuse)(b"id", b"1", data) == expected == python(b"id", b"1", data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"extra":1}',  # undeclared: the additional-properties cell
        b'{"id":1,"id":2}',  # repeated key: the last one wins, as in msgspec
        b'{"\\u0069d":1}',  # escaped key
        '{"name":"\\u00e9 é"}'.encode(),  # an escape next to non-ASCII text
        b'{"name":"\\ud800"}',  # half a surrogate pair
        b'{"nested":' + b"[" * 65 + b"]" * 65 + b"}",  # deeper than the C encoder goes
        b"[]",
        b'{"id":1',
    ],
)
def test_c_encoder_leaves_unusual_records_to_python(
    c_encoder: Callable[[Callable[[bytes, bytes, bytes], bytes]], LineEncoder], data: bytes
) -> None:
    calls: list[bytes] = []

    def fallback(ab_id: bytes, emitted_at: bytes, body: bytes) -> bytes:
        calls.append(body)
        return b"python"

    accelerated = c_encoder(fallback)
    assert accelerated(b"id", b"1", data) == b"python"
    assert calls == [data]


# Bytes that end a run the C encoder copies as it is, as they are written in JSON text.
_CELL_STOPS = [b'\\"', b"\\\\", b"\\n", b"\\r", b"\\t", b"\\u0041", b"\\ud83d\\ude00", b",", b"\\/"]


def test_c_encoder_copies_16_bytes_at_a_time_up_to_every_cell_stop(
    c_encoder: Callable[[Callable[[bytes, bytes, bytes], bytes]], LineEncoder],
) -> None:
    """The C encoder scans strings and copies cells 16 bytes at a time (SSE2): each escape,
    comma, quote, bracket and raw CR or LF (JSON whitespace in a nested value) at every offset
    of the first loads of a string cell and of a nested cell, in the middle column and in the
    last, gives the Python row; the C encoder writes every one of these rows itself. Inputs are
    in buffers of their exact size, and each row comes from a new encoder, whose row buffer is
    then the row's bound: under `make asan` a read past the input or a write past that bound is
    reported (the bound has slack by design: see write_text_cell)."""

    def refuse(*_: bytes) -> bytes:
        raise AssertionError("the C encoder should have written this row itself")

    python = RootLevelCsvEncoder(COLUMNS)
    rows = 0
    for stop in _CELL_STOPS:
        for offset in range(0, 40):
            text = b"a" * offset + stop + b"b" * (40 - offset)
            for column in (b"name", b"k5"):
                for data in (
                    b'{"' + column + b'":"' + text + b'"}',
                    # An escape after it: the cell loop writes the text, and only the stop can
                    # make it quoted.
                    b'{"' + column + b'":"' + text + b'\\/"}',
                    b'{"' + column + b'":["' + text + b'",1]}',
                    b'{"' + column + b'":{"k":"' + text + b'"},"id":1}',
                    b'{"' + column + b'":[' + b"1," * offset + b'"x"]}',
                ):
                    exact = (ctypes.c_char * len(data)).from_buffer_copy(data)
                    row = c_encoder(refuse)(AB_ID, EMITTED_AT, exact)  # type: ignore[arg-type]
                    assert row == python(AB_ID, EMITTED_AT, data), data
                    rows += 1
    for space in (b"\n", b"\r", b"\r\n", b"\t"):
        for offset in range(0, 40):
            # Raw whitespace in a nested value, with nothing else in the cell that quotes it.
            data = b'{"nested":[' + b" " * offset + space + b"1" * 20 + b"]}"
            exact = (ctypes.c_char * len(data)).from_buffer_copy(data)
            row = c_encoder(refuse)(AB_ID, EMITTED_AT, exact)  # type: ignore[arg-type]
            assert row == python(AB_ID, EMITTED_AT, data), data
            rows += 1
    assert rows == len(_CELL_STOPS) * 40 * 10 + 4 * 40


def test_c_encoder_takes_only_three_byte_strings(
    c_encoder: Callable[[Callable[[bytes, bytes, bytes], bytes]], LineEncoder],
) -> None:
    accelerated = c_encoder(RootLevelCsvEncoder(COLUMNS))
    with pytest.raises(TypeError):
        accelerated(b"id", b"1")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        accelerated(b"id", b"1", "{}")  # type: ignore[arg-type]
    data = valid_object(random.Random(3))
    assert accelerated(b"id", b"1", bytearray(data)) == accelerated(b"id", b"1", data)  # type: ignore[arg-type]


def test_without_a_c_compiler_the_build_goes_on_and_the_python_encoder_is_used(
    tmp_path: Path,
) -> None:
    """setup.py marks the extension optional: a machine with Python but no compiler still
    installs the connector (`make demo` and `make test` work there), only slower."""
    for name in ("setup.py", "destination_s3"):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("*.so"))
        else:
            shutil.copy(source, tmp_path / name)
    # -S below: without the site module, the editable install's finder (which maps
    # destination_s3._speedups to the project's own build) is not installed.
    site_packages = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "CC": "/bin/false", "PYTHONPATH": f"{tmp_path}:{site_packages}"}
    env.pop("DESTINATION_S3_PURE_PYTHON", None)
    build = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    assert 'building extension "destination_s3._speedups" failed' in build.stderr
    assert not list((tmp_path / "destination_s3").glob("*.so"))
    probe = (
        "from destination_s3 import encoders;"
        "header, encode = encoders.encoder_for(encoders.OutputFormat.CSV_ROOT_LEVEL, ['a']);"
        "print(encoders.ACCELERATED, type(encode).__name__, encode(b'i', b'1', b'{\"a\":\"x,y\"}'))"
    )
    ran = subprocess.run(
        [sys.executable, "-S", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert ran.stdout.strip() == "False RootLevelCsvEncoder b'i,1,\"x,y\",\\r\\n'", ran.stderr


def test_c_encoder_refuses_to_run_uninitialised_or_with_repeated_columns() -> None:
    require_speedups()
    from destination_s3 import _speedups

    bare = _speedups.CsvRowEncoder.__new__(_speedups.CsvRowEncoder)
    with pytest.raises(TypeError, match="not initialised"):
        bare(b"id", b"1", b'{"x":1}')
    with pytest.raises(ValueError, match="unique"):
        _speedups.CsvRowEncoder(["a", "b", "a"], RootLevelCsvEncoder(["a", "b"]))
    encoder = _speedups.CsvRowEncoder(["a"], RootLevelCsvEncoder(["a"]))
    with pytest.raises(RuntimeError, match="already initialised"):
        encoder.__init__(["b"], RootLevelCsvEncoder(["b"]))  # type: ignore[misc]


def test_c_encoder_survives_a_fallback_that_reenters_it_with_a_huge_row() -> None:
    """The fallback runs after the C row is finished, so it may call the same encoder (and
    grow, then drop, its row buffer) without corrupting the outer call."""
    require_speedups()
    from destination_s3 import _speedups

    python = RootLevelCsvEncoder(["a"])
    huge = b'{"a":"' + b"x," * 500_000 + b'"}'

    def fallback(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
        inner = accelerated(b"inner", b"2", huge)
        assert inner == python(b"inner", b"2", huge)
        return python(ab_id, emitted_at, data)

    accelerated = _speedups.CsvRowEncoder(["a"], fallback)
    assert accelerated(b"id", b"1", b'{"b":1}') == python(b"id", b"1", b'{"b":1}')
    assert accelerated(b"id", b"1", b'{"a":"y"}') == b"id,1,y,\r\n"


def test_c_encoder_and_a_fallback_referring_to_it_are_collected() -> None:
    require_speedups()
    from destination_s3 import _speedups

    collected: list[str] = []

    class Fallback:
        encoder: object = None

        def __call__(self, ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
            return b""

        def __del__(self) -> None:
            collected.append("fallback")

    fallback = Fallback()
    fallback.encoder = _speedups.CsvRowEncoder(["a"], fallback)  # a reference cycle
    del fallback
    gc.collect()
    assert collected == ["fallback"]


def test_c_unflattened_csv_doubles_every_quote_wherever_it_falls_in_a_word() -> None:
    """The C line doubles quotes eight bytes at a time: quotes at every offset of a word, runs
    of them, and lengths around each word boundary, in exact-size buffers (ASan sees an
    over-read or an over-write)."""
    require_speedups()
    from destination_s3 import _speedups, encoders

    rng = random.Random(8)
    bodies = [b'"' * length for length in range(0, 40)]
    bodies += [b"a" * offset + b'"' + b"b" * (20 - offset) for offset in range(21)]
    bodies += [
        bytes(rng.choice(b'"a\\\x00\xff') for _ in range(length))
        for length in range(0, 70)
        for _ in range(40)
    ]
    for data in bodies:
        exact = (ctypes.c_char * len(data)).from_buffer_copy(data)
        expected = encoders.encode_csv_no_flattening(AB_ID, EMITTED_AT, data)
        assert _speedups.encode_csv_no_flattening(AB_ID, EMITTED_AT, exact) == expected


@pytest.mark.parametrize("name", ["encode_jsonl", "encode_csv_no_flattening"])
def test_c_jsonl_and_unflattened_csv_lines_equal_python_on_the_corpus(name: str) -> None:
    require_speedups()
    from destination_s3 import _speedups, encoders

    python, accelerated = getattr(encoders, name), getattr(_speedups, name)
    for data in corpus(seed=3, count=20_000):
        exact = (ctypes.c_char * len(data)).from_buffer_copy(data)  # no trailing NUL (ASan)
        expected = python(AB_ID, EMITTED_AT, data)
        assert accelerated(AB_ID, EMITTED_AT, data) == expected
        assert accelerated(AB_ID, EMITTED_AT, exact) == expected
    with pytest.raises(TypeError):
        accelerated(AB_ID, EMITTED_AT)
