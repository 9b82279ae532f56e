"""Hostile input, run through the real connector process against the moto server.

A source is code the destination does not control: it can send bytes that are not UTF-8, NUL
characters, one record of 60 MB, JSON nested thousands deep, integers no machine word holds,
JavaScript's NaN, duplicate keys, CRLF line endings, blank lines, a last line cut off by a crash,
megabytes of garbage, stream names in any script or of any length, and records that break the
protocol. For every such input the outcome is decided here and asserted exactly:

* accepted faithfully: what is read back from S3 is what was sent (byte for byte for JSONL, cell
  for cell for CSV), every record once, and the STATE after it comes out with the right count; or
* refused: exit code 1, one TRACE error whose message starts with ``Input line N:`` for the
  offending line, and only the states whose records are durable are printed before it.

Never acceptable: a Python traceback (outside the protocol's ``stack_trace`` field; one test
checks that field too), a hang (every run has a timeout), a record silently dropped or altered.

Inputs that can be accepted share one connector run per format (the start-up costs ~2 s of CPU):
each case has its own test reading its part of the run, so one wrong case hides no other one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import pytest

from integration_tests.connector import (
    ConnectorRun,
    MakeConfig,
    Message,
    build_config,
    configured_catalog,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.readback import (
    AB_ID,
    ADDITIONAL_PROPERTIES,
    EMITTED_AT,
    METADATA,
    assert_clean_stdout,
    assert_uuid4,
    csv_rows,
    with_destination_count,
)
from integration_tests.s3_server import MotoServer, unique_name

RUN_TIMEOUT_S: Final = 60.0
"""Every connector run is bounded: a hang fails the test instead of stalling the suite."""

EMITTED_AT_MS: Final = 1_700_000_000_000
TRACEBACK: Final = "Traceback (most recent call last)"
S3_MAX_KEY_BYTES: Final = 1024
"""S3's limit on a key (UTF-8 bytes): AWS answers KeyTooLongError above it, moto does not."""

JSONL_FORMAT: Final[dict[str, str]] = {"format_type": "JSONL"}
CSV_ROOT_FORMAT: Final[dict[str, str]] = {
    "format_type": "CSV",
    "flattening": "Root-level flattening",
}

# The JSONL envelope the connector writes: {"_tarsal_metadata":{...},"data":<data>}.
_ENVELOPE_HEAD = b'{"' + METADATA.encode() + b'":'
_ENVELOPE_DATA = b'"},"data":'

# Integers beyond 64 bits (and one beyond Python's default 4,300-digit str() limit).
BEYOND_U64 = 2**64
BELOW_I64 = -(10**29) + 12345
BEYOND_U128 = 2**128 + 1
DIGITS_400 = int("9" * 400)
DIGITS_5000_TEXT = b"7" * 5000  # as text: int() and str() refuse > 4,300 digits
NESTING_ACCEPTED = 500
"""Well inside the ~1,000 levels the connector reads: must be written like any other record."""
NESTING_REFUSED = 5000
GARBAGE_BYTES = 10 * 1024 * 1024
HUGE_RECORD_BYTES = 60 * 1024 * 1024


def _int_text(value: int) -> bytes:
    return str(value).encode()


def nested_lists(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def record_line(stream: str, data: bytes, *, emitted_at: int | None = EMITTED_AT_MS) -> bytes:
    """A RECORD line built from raw bytes: `data` goes in exactly as given (it may be invalid
    UTF-8 or invalid JSON), the stream name as raw UTF-8."""
    name = json.dumps(stream, ensure_ascii=False).encode()
    tail = b"" if emitted_at is None else b',"emitted_at":' + _int_text(emitted_at)
    return b'{"type":"RECORD","record":{"stream":' + name + b',"data":' + data + tail + b"}}"


@dataclass
class SentRecord:
    stream: str
    line_number: int
    expected_data: bytes  # the `data` the JSONL object must hold
    exact: bool = True  # byte for byte; else equal as parsed JSON (data the connector re-encodes)

    def matches(self, written: bytes) -> bool:
        if self.exact:
            return written == self.expected_data
        return bool(parse_exact(written) == parse_exact(self.expected_data))


@dataclass
class Script:
    """stdin lines and what the connector must make of them: the records in S3 and the states
    printed (with destinationStats.recordCount, counted per stream as the platform does)."""

    lines: list[bytes] = field(default_factory=list)
    records: list[SentRecord] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    _per_stream: Counter[str] = field(default_factory=Counter)
    _at_last_state: Counter[str] = field(default_factory=Counter)

    def raw(self, line: bytes, case: str | None = None) -> int:
        """Append a line as is; returns its 1-based line number."""
        self.lines.append(line)
        if case is not None:
            self.cases.append(case)
        return len(self.lines)

    def record(
        self,
        stream: str,
        data: bytes,
        *,
        case: str | None = None,
        expected: bytes | None = None,
        exact: bool = True,
        ending: bytes = b"",
    ) -> int:
        number = self.raw(record_line(stream, data) + ending, case)
        expected_data = data if expected is None else expected
        self.records.append(SentRecord(stream, number, expected_data, exact))
        self._per_stream[stream] += 1
        return number

    def state(
        self, stream: str, cursor: Any, *, case: str | None = None, ending: bytes = b""
    ) -> int:
        message = stream_state(stream, {"cursor": cursor})
        count = self._per_stream[stream] - self._at_last_state[stream]
        self._at_last_state[stream] = self._per_stream[stream]
        self.states.append(with_destination_count(message, count))
        return self.raw(json.dumps(message, ensure_ascii=False).encode() + ending, case)

    def stdin(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)

    def line_of(self, data_prefix: bytes) -> SentRecord:
        return next(r for r in self.records if r.expected_data.startswith(data_prefix))


@dataclass(frozen=True)
class Outcome:
    """A finished run and everything it left in its bucket (read right after it)."""

    run: ConnectorRun
    objects: dict[str, bytes]
    open_uploads: list[dict[str, Any]]


def run_in_fresh_bucket(
    server: MotoServer,
    format: Mapping[str, Any],
    catalog: Mapping[str, Any],
    stdin: bytes,
    **config_extra: Any,
) -> Outcome:
    """Run `write` into a new bucket of a freshly reset server and read the bucket back at once
    (for module-scoped fixtures, which cannot use the per-test `s3` fixture)."""
    server.reset()
    bucket = server.create_bucket(unique_name("hostile"), region="us-east-1")
    config = build_config(bucket, format=format, server=server, **config_extra)
    run = run_write(config, catalog, stdin, timeout=RUN_TIMEOUT_S)
    return Outcome(run, data_objects(server, bucket), server.list_multipart_uploads(bucket))


def data_objects(server: MotoServer, bucket: str) -> dict[str, bytes]:
    """Key -> bytes of the data objects: a successful sync also writes its manifest under
    `_tarsal_manifests/`, which readers skip."""
    return {key: body for key, body in server.read_objects(bucket).items() if "_tarsal_" not in key}


# ---------------------------------------------------------------------------------------------
# Reading the output strictly
# ---------------------------------------------------------------------------------------------


def jsonl_envelopes(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """(metadata, raw `data` bytes) of every line of a JSONL object.

    `data` is not parsed: it must be compared byte for byte, and Python's json refuses integers
    of more than 4,300 digits. The envelope around it is checked to be exactly the connector's.
    """
    assert body.endswith(b"\n"), "the object's last line has no newline"
    envelopes = []
    for number, line in enumerate(body[:-1].split(b"\n"), 1):
        assert line.startswith(_ENVELOPE_HEAD) and line.endswith(b"}"), (
            f"line {number}: {line[:80]!r}"
        )
        head, separator, rest = line.partition(_ENVELOPE_DATA)
        assert separator, f"line {number} has no data field: {line[:80]!r}"
        metadata = json.loads(head[len(_ENVELOPE_HEAD) :] + b'"}')
        assert list(metadata) == [AB_ID, EMITTED_AT], metadata
        assert_uuid4(metadata[AB_ID])
        assert metadata[EMITTED_AT] == str(EMITTED_AT_MS), metadata
        envelopes.append((metadata, rest[:-1]))
    return envelopes


def jsonl_data_by_stream(objects: Mapping[str, bytes]) -> dict[str, list[bytes]]:
    """Directory (stream) -> raw `data` of each line, in key then line order; every object must
    be a data object of this connector."""
    found: dict[str, list[bytes]] = {}
    for key, body in objects.items():
        directory, _, name = key.rpartition("/")
        assert name.endswith(".jsonl"), key
        found.setdefault(directory, []).extend(data for _, data in jsonl_envelopes(body))
    return found


def parse_exact(data: bytes) -> Any:
    """JSON with every number exact (floats as Decimal), for comparing re-encoded data."""
    return json.loads(data, parse_float=Decimal)


def assert_no_traceback(run: ConnectorRun) -> None:
    """No Python traceback anywhere but the protocol's own TRACE `stack_trace` field (see
    test_a_refusal_prints_no_python_traceback_at_all for that field)."""
    messages = []
    for message in run.messages:
        if message.get("type") == "TRACE":
            error = dict(message["trace"].get("error") or {})
            error.pop("stack_trace", None)
            message = {**message, "trace": {**message["trace"], "error": error}}
        messages.append(message)
    visible = "\n".join([json.dumps(messages), *run.non_json_lines, run.stderr])
    assert TRACEBACK not in visible, run.describe()


def assert_refused(run: ConnectorRun, line_number: int, fragment: str) -> str:
    """Exit 1 with exactly one TRACE error `Input line N: <fragment>…`; returns its message."""
    assert_no_traceback(run)
    assert_clean_stdout(run)
    assert run.returncode == 1, run.describe()
    errors = run.trace_errors()
    assert len(errors) == 1, run.describe()
    message = str(errors[0].get("message", ""))
    assert errors[0].get("failure_type") == "system_error", errors[0]
    expected_start = f"Input line {line_number}: {fragment}"
    assert message.startswith(expected_start), (
        f"{message[:300]!r} does not start with {expected_start!r}"
    )
    return message


def assert_accepted(outcome: Outcome, script: Script) -> None:
    """Exit 0, no error, every state printed once in order with its count, nothing left open."""
    run = outcome.run
    assert_no_traceback(run)
    assert_clean_stdout(run)
    run.assert_success()
    assert run.states() == script.states, f"states:\n{run.states()}\nexpected:\n{script.states}"
    assert outcome.open_uploads == []


# ---------------------------------------------------------------------------------------------
# Accepted inputs, JSONL: one run
# ---------------------------------------------------------------------------------------------

UNICODE_STREAMS: Final = ("用户", "émoji🎉")
JSONL_STREAMS: Final = ("users", "orders", *UNICODE_STREAMS)

INVALID_UTF8_USERS_1 = (
    b'{"id":"utf8-1","stray":"a\xffb","cut":"caf\xc3","surrogate":"\xed\xa0\x80",'
    b'"overlong":"\xc0\xaf","valid":"\xc5\xbc\xc3\xb3\xc5\x82w \xf0\x9f\x90\xa2"}'
)
INVALID_UTF8_ORDERS_KEY = b'{"id":"utf8-key","k\xff\xfe":"\xf0\x9f\x98"}'
INVALID_UTF8_USERS_2 = b'{"id":"utf8-2","continuation":"\x80\x80"}'
ESCAPED_NUL = b'{"id":"nul","s":"a\\u0000b","\\u0000":"\\u0000\\u0000"}'
DUPLICATE_KEYS = b'{"id":"dup","a":1,"a":2,"a":{"x":3}}'
CR_INSIDE_DATA = b'{"id":"cr-inside",\r"a":[1,\r2],"s":"x\\r"}'
BIG_NUMBERS = (
    b'{"id":"big","u64_plus_1":'
    + _int_text(BEYOND_U64)
    + b',"negative":'
    + _int_text(BELOW_I64)
    + b',"nested":{"u128_plus_1":'
    + _int_text(BEYOND_U128)
    + b'},"list":['
    + _int_text(BEYOND_U64 * 2)
    + b","
    + _int_text(-BEYOND_U64 - 1)
    + b'],"digits_400":'
    + _int_text(DIGITS_400)
    + b',"digits_5000":'
    + DIGITS_5000_TEXT
    + b',"beyond_double":1e400,"tiny":-1e-400,"exponent":1E+2}'
)
NESTED_500 = b'{"id":"nest-500","deep":' + nested_lists(NESTING_ACCEPTED) + b"}"


def replaced(data: bytes) -> bytes:
    """What the connector is decided to write for invalid UTF-8: each bad sequence -> U+FFFD."""
    return data.decode("utf-8", "replace").encode()


def jsonl_bundle_script() -> Script:
    s = Script()
    s.raw(b"", case="blank line")
    s.state("users", 0)
    s.record(
        "users",
        INVALID_UTF8_USERS_1,
        case="invalid UTF-8 in data strings (4 kinds)",
        expected=replaced(INVALID_UTF8_USERS_1),
    )
    s.raw(b" ", case="space-only line")
    s.record(
        "orders",
        INVALID_UTF8_ORDERS_KEY,
        case="invalid UTF-8 in a data key",
        expected=replaced(INVALID_UTF8_ORDERS_KEY),
    )
    s.raw(b"\t", case="tab-only line")
    s.record(
        "users",
        INVALID_UTF8_USERS_2,
        case="invalid UTF-8: lone continuation bytes",
        expected=replaced(INVALID_UTF8_USERS_2),
    )
    s.record("users", ESCAPED_NUL, case="escaped NUL \\u0000 in a value and a key")
    s.record("users", DUPLICATE_KEYS, case="duplicate keys in data")
    s.raw(b"\r", case="CR-only line")
    s.record("users", b'{"id":"crlf"}', case="CRLF-terminated RECORD", ending=b"\r")
    s.state("users", 1, case="CRLF-terminated STATE", ending=b"\r")
    s.record(
        "orders",
        CR_INSIDE_DATA,
        case="bare CR between tokens of data",
        expected=CR_INSIDE_DATA.replace(b"\r", b""),
        exact=False,
        ending=b"\r",
    )
    s.raw(b"  \t \r", case="mixed whitespace line")
    s.record("用户", b'{"id":"zh","name":"\xe7\x94\xa8\xe6\x88\xb7"}', case="stream name 用户")
    s.state("用户", "zh", case="STATE of stream 用户")
    s.record("émoji🎉", b'{"id":"emoji","e":"\xf0\x9f\x8e\x89"}', case="stream name émoji🎉")
    s.state("émoji🎉", "emoji", case="STATE of stream émoji🎉")
    s.record("users", BIG_NUMBERS, case="integers beyond 2^64 (JSONL)")
    s.record("users", NESTED_500, case="500-deep nesting (JSONL)")
    s.state("users", 2)
    s.state("orders", 1)
    return s


JSONL_SCRIPT: Final = jsonl_bundle_script()


@pytest.fixture(scope="module")
def jsonl_bundle(moto_server: MotoServer) -> Outcome:
    catalog = configured_catalog(list(JSONL_STREAMS))
    return run_in_fresh_bucket(moto_server, JSONL_FORMAT, catalog, JSONL_SCRIPT.stdin())


def test_jsonl_bundle_succeeds_with_every_record_and_state(jsonl_bundle: Outcome) -> None:
    """No silent drop: every record sent is in S3 once, in order per stream, and every state
    comes out once, in order, with its count."""
    assert_accepted(jsonl_bundle, JSONL_SCRIPT)
    expected: dict[str, list[SentRecord]] = {}
    for sent in JSONL_SCRIPT.records:
        expected.setdefault(sent.stream, []).append(sent)
    written = jsonl_data_by_stream(jsonl_bundle.objects)
    assert sorted(written) == sorted(expected), list(written)
    for stream, sent_records in expected.items():
        got = written[stream]
        assert len(got) == len(sent_records), (
            f"{stream}: {len(got)} written, {len(sent_records)} sent"
        )
        for sent, data in zip(sent_records, got, strict=True):
            assert sent.matches(data), f"line {sent.line_number}: wrote {data[:120]!r}"


def _written(bundle: Outcome, stream: str) -> list[bytes]:
    return jsonl_data_by_stream(bundle.objects).get(stream, [])


def test_invalid_utf8_in_data_is_replaced_and_warned_about(jsonl_bundle: Outcome) -> None:
    """Readers refuse a file with invalid UTF-8 in it, so each bad sequence becomes U+FFFD (and
    only that: the valid characters around it stay), and the first repair per stream is logged
    with its line number so the source can be fixed."""
    users, orders = _written(jsonl_bundle, "users"), _written(jsonl_bundle, "orders")
    for data, stream_data in (
        (INVALID_UTF8_USERS_1, users),
        (INVALID_UTF8_USERS_2, users),
        (INVALID_UTF8_ORDERS_KEY, orders),
    ):
        assert replaced(data) in stream_data, f"{replaced(data)!r} not written"
    first = json.loads(replaced(INVALID_UTF8_USERS_1))
    assert first["stray"] == "a\ufffdb"
    assert first["valid"] == "żółw 🐢"
    assert "k\ufffd\ufffd" in json.loads(replaced(INVALID_UTF8_ORDERS_KEY))

    warnings = [  # the first repair of each stream; the end-of-sync counts are tested below
        log["message"]
        for log in jsonl_bundle.run.logs("WARN")
        if "UTF-8" in log["message"] and log["message"].startswith("Input line")
    ]
    users_line = JSONL_SCRIPT.line_of(b'{"id":"utf8-1"').line_number
    orders_line = JSONL_SCRIPT.line_of(b'{"id":"utf8-key"').line_number
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"Input line {users_line}: ") and " users " in warnings[0]
    assert warnings[1].startswith(f"Input line {orders_line}: ") and " orders " in warnings[1]


def test_invalid_utf8_repairs_are_counted_per_stream_at_the_end(jsonl_bundle: Outcome) -> None:
    """The warning promises "Records repaired are counted per stream at the end of the sync": the
    end-of-sync summary must say how many records of each stream were altered (users 2,
    orders 1), or the user cannot tell one repaired record from a million."""
    summary = [
        log["message"]
        for log in jsonl_bundle.run.logs()
        if not log["message"].startswith("Input line")
        and re.search(r"repaired|invalid UTF-8|U\+FFFD", log["message"])
    ]
    for stream, count in (("users", 2), ("orders", 1)):
        assert any(
            re.search(rf"\b{stream}\b", text) and re.search(rf"\b{count}\b", text)
            for text in summary
        ), f"no end-of-sync count of {count} repaired records for {stream}; log lines: {summary}"


def test_escaped_nul_and_duplicate_keys_are_copied_verbatim(jsonl_bundle: Outcome) -> None:
    """Valid JSON is the source's business: JSONL copies it byte for byte (a reader sees the NUL
    characters, and the last of the duplicate keys, as the source meant)."""
    users = _written(jsonl_bundle, "users")
    assert ESCAPED_NUL in users
    assert DUPLICATE_KEYS in users
    assert json.loads(ESCAPED_NUL) == {"id": "nul", "s": "a\x00b", "\x00": "\x00\x00"}
    assert json.loads(DUPLICATE_KEYS)["a"] == {"x": 3}


def test_crlf_endings_and_whitespace_lines_are_accepted(jsonl_bundle: Outcome) -> None:
    """A source on Windows ends lines with CRLF; blank lines are harmless. The CR must not leak
    into the output (a bare CR splits lines for some readers), and data is kept exactly."""
    users, orders = _written(jsonl_bundle, "users"), _written(jsonl_bundle, "orders")
    assert b'{"id":"crlf"}' in users
    [cr_inside] = [d for d in orders if b"cr-inside" in d]
    assert b"\r" not in cr_inside, cr_inside
    assert parse_exact(cr_inside) == parse_exact(CR_INSIDE_DATA.replace(b"\r", b""))
    assert all(b"\r" not in body for body in jsonl_bundle.objects.values())
    crlf_state = with_destination_count(stream_state("users", {"cursor": 1}), 5)
    assert crlf_state in jsonl_bundle.run.states()


def test_unicode_stream_names_get_their_own_directories(jsonl_bundle: Outcome) -> None:
    """Stream names in any script are directory names as they are (no escaping needed)."""
    for stream in UNICODE_STREAMS:
        keys = [key for key in jsonl_bundle.objects if key.startswith(f"{stream}/")]
        assert len(keys) == 1, (stream, list(jsonl_bundle.objects))
        [sent] = [r for r in JSONL_SCRIPT.records if r.stream == stream]
        assert [data for _, data in jsonl_envelopes(jsonl_bundle.objects[keys[0]])] == [
            sent.expected_data
        ]
    printed = [s["stream"]["stream_descriptor"]["name"] for s in jsonl_bundle.run.states()]
    assert [name for name in printed if name in UNICODE_STREAMS] == list(UNICODE_STREAMS)


def test_huge_integers_and_deep_nesting_are_kept_exactly_in_jsonl(jsonl_bundle: Outcome) -> None:
    """JSONL never parses `data`: integers of any size, and numbers beyond a double, keep every
    digit; 500 levels of nesting are written like any record."""
    users = _written(jsonl_bundle, "users")
    assert BIG_NUMBERS in users
    assert NESTED_500 in users
    assert DIGITS_5000_TEXT in BIG_NUMBERS  # sanity: the 5,000 digits are really there


# ---------------------------------------------------------------------------------------------
# Accepted inputs, root-level CSV (the encoder parses `data` here): one run
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS: Final = ("id", "u64_plus_1", "negative", "nested", "list", "dup", "deep")
CSV_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {name: {} for name in CSV_COLUMNS},
}
CSV_BIG = (
    b'{"id":"big","u64_plus_1":'
    + _int_text(BEYOND_U64)
    + b',"negative":'
    + _int_text(BELOW_I64)
    + b',"nested":{"n":'
    + _int_text(BEYOND_U128)
    + b'},"list":['
    + _int_text(BEYOND_U64 * 2)
    + b","
    + _int_text(-BEYOND_U64 - 1)
    + b'],"extra":'
    + _int_text(2**100)
    + b',"digits_400":'
    + _int_text(DIGITS_400)
    + b"}"
)
CSV_DEEP = b'{"id":"deep","deep":' + nested_lists(NESTING_ACCEPTED) + b"}"
CSV_DUP = b'{"id":"dup","dup":1,"dup":2}'


def csv_bundle_script() -> Script:
    s = Script()
    s.record("numbers", CSV_BIG, case="integers beyond 2^64 (root-level CSV)")
    s.record("numbers", CSV_DEEP, case="500-deep nesting (root-level CSV)")
    s.record("numbers", CSV_DUP, case="duplicate keys (root-level CSV)")
    s.state("numbers", 3)
    return s


CSV_SCRIPT: Final = csv_bundle_script()


def csv_catalog(stream: str = "numbers") -> dict[str, Any]:
    return configured_catalog([stream], json_schema=CSV_SCHEMA)


@pytest.fixture(scope="module")
def csv_bundle(moto_server: MotoServer) -> Outcome:
    return run_in_fresh_bucket(moto_server, CSV_ROOT_FORMAT, csv_catalog(), CSV_SCRIPT.stdin())


def csv_data_rows(outcome: Outcome, columns: Sequence[str] = CSV_COLUMNS) -> list[list[str]]:
    """The data rows of every CSV object (header checked), metadata columns checked and cut."""
    rows: list[list[str]] = []
    for key, body in outcome.objects.items():
        assert key.endswith(".csv"), key
        header, *data = csv_rows(body)
        assert header == [AB_ID, EMITTED_AT, *columns, ADDITIONAL_PROPERTIES], header
        for row in data:
            assert len(row) == len(header), row
            assert_uuid4(row[0])
            assert row[1] == str(EMITTED_AT_MS), row
            rows.append(row[2:])
    return rows


def test_csv_bundle_succeeds_with_every_record_and_state(csv_bundle: Outcome) -> None:
    assert_accepted(csv_bundle, CSV_SCRIPT)
    assert [row[0] for row in csv_data_rows(csv_bundle)] == ["big", "deep", "dup"]


def test_huge_integers_keep_every_digit_in_csv_cells(csv_bundle: Outcome) -> None:
    """Flattening parses `data`: a parser that turns big integers into doubles would silently
    round ids and amounts. Every cell must hold the exact digits (JSON cells too)."""
    big = next(row for row in csv_data_rows(csv_bundle) if row[0] == "big")
    id_, u64, negative, nested, list_, dup, deep, additional = big
    assert (id_, dup, deep) == ("big", "", "")
    assert u64 == str(BEYOND_U64)
    assert negative == str(BELOW_I64)
    assert json.loads(nested) == {"n": BEYOND_U128} and str(BEYOND_U128) in nested
    assert json.loads(list_) == [BEYOND_U64 * 2, -BEYOND_U64 - 1]
    assert json.loads(additional) == {"extra": 2**100, "digits_400": DIGITS_400}
    assert str(DIGITS_400) in additional


def test_nesting_and_duplicate_keys_in_csv_cells(csv_bundle: Outcome) -> None:
    """500 levels fit in a cell as compact JSON; of duplicate keys the last wins, as in every
    JSON reader (and as the JSONL output reads)."""
    rows = {row[0]: row for row in csv_data_rows(csv_bundle)}
    assert rows["deep"][CSV_COLUMNS.index("deep")] == nested_lists(NESTING_ACCEPTED).decode()
    assert rows["dup"][CSV_COLUMNS.index("dup")] == "2"


def test_integer_of_5000_digits_is_kept_in_csv(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """Python's int() refuses more than 4,300 digits by default; JSONL keeps such a number
    (test above), so CSV must too, digit for digit, rather than fail a valid record."""
    s = Script()
    s.record("numbers", b'{"id":"d5000","u64_plus_1":' + DIGITS_5000_TEXT + b"}")
    s.state("numbers", 1)
    config = make_config(bucket, format=CSV_ROOT_FORMAT)
    run = run_write(config, csv_catalog(), s.stdin(), timeout=RUN_TIMEOUT_S)
    outcome = Outcome(run, data_objects(s3, bucket), s3.list_multipart_uploads(bucket))
    assert_accepted(outcome, s)
    [row] = csv_data_rows(outcome)
    assert row[1].encode() == DIGITS_5000_TEXT


def test_number_beyond_double_range_is_not_nulled_in_csv(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """1e400 is valid JSON (JSONL copies it). A CSV cell saying `null` would silently replace a
    value by its absence: the cell must hold the number (any exact spelling of it)."""
    s = Script()
    s.record("numbers", b'{"id":"e400","u64_plus_1":1e400}')
    s.state("numbers", 1)
    config = make_config(bucket, format=CSV_ROOT_FORMAT)
    run = run_write(config, csv_catalog(), s.stdin(), timeout=RUN_TIMEOUT_S)
    outcome = Outcome(run, data_objects(s3, bucket), s3.list_multipart_uploads(bucket))
    assert_accepted(outcome, s)
    [row] = csv_data_rows(outcome)
    cell = row[1]
    assert re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", cell), f"cell is {cell!r}, not the number"
    assert Decimal(cell) == Decimal("1e400"), cell


def test_bare_cr_inside_data_with_a_big_number_is_accepted(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """A bare CR between tokens makes the connector re-encode `data` (so no CR reaches the file).
    That re-encoding must not lose what the plain copy keeps: 1e400 and a 5,000-digit integer
    are valid JSON, so the record is written with the same values."""
    data = b'{"id":"cr-big",\r"e":1e400,\r"d":' + DIGITS_5000_TEXT + b"}"
    s = Script()
    s.record("users", data)
    s.state("users", 1)
    run = run_write(
        make_config(bucket), configured_catalog(["users"]), s.stdin(), timeout=RUN_TIMEOUT_S
    )
    outcome = Outcome(run, data_objects(s3, bucket), s3.list_multipart_uploads(bucket))
    assert_accepted(outcome, s)
    [written] = jsonl_data_by_stream(outcome.objects)["users"]
    assert b"\r" not in written
    assert re.search(rb'"e":1(\.0+)?[eE]\+?400\b', written), written[:120]
    assert b'"d":' + DIGITS_5000_TEXT in written


# ---------------------------------------------------------------------------------------------
# Large inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_60_mb_record_is_written_whole(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """One record bigger than a multipart part (5 MiB) and than the buffers: it must arrive
    whole, not truncated at a chunk or part boundary."""
    rng = random.Random(60)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    unit = bytes(rng.choice(alphabet) for _ in range(4096))
    blob = (unit * (HUGE_RECORD_BYTES // len(unit) + 1))[:HUGE_RECORD_BYTES]
    data = b'{"id":"huge","blob":"' + blob + b'","end":"tail-marker"}'
    s = Script()
    s.record("users", data)
    s.state("users", 1)
    run = run_write(
        make_config(bucket), configured_catalog(["users"]), s.stdin(), timeout=RUN_TIMEOUT_S * 2
    )
    outcome = Outcome(run, data_objects(s3, bucket), s3.list_multipart_uploads(bucket))
    assert_accepted(outcome, s)
    [written] = jsonl_data_by_stream(outcome.objects)["users"]
    assert len(written) == len(data)
    assert hashlib.sha256(written).hexdigest() == hashlib.sha256(data).hexdigest()


LONG_STREAM_NAME: Final = "L" * 1000


def test_1000_character_stream_name_fails_clearly_or_fits_s3_key_limit(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """S3 refuses keys over 1,024 bytes (KeyTooLongError), moto does not. A 1,000-character
    stream name plus `/<YYYY_MM_DD>_<epoch ms>_0.jsonl` (32 characters) is 1,033 bytes: the
    connector must either say so before writing anything (exit 1, one config_error TRACE naming
    the stream and the 1,024-byte limit, no state, no object) or write keys that fit. Quietly
    producing keys that only moto accepts would fail on AWS in the middle of a sync."""
    s = Script()
    s.record(LONG_STREAM_NAME, b'{"id":"long"}')
    s.state(LONG_STREAM_NAME, 1)
    catalog = configured_catalog([LONG_STREAM_NAME])
    run = run_write(make_config(bucket), catalog, s.stdin(), timeout=RUN_TIMEOUT_S)
    assert_no_traceback(run)
    assert_clean_stdout(run)
    keys = s3.data_keys(bucket)
    if run.returncode != 0:
        assert run.returncode == 1, run.describe()
        [error] = run.trace_errors()
        message = str(error.get("message"))
        assert error.get("failure_type") == "config_error", error
        assert message.startswith(f"Stream '{LONG_STREAM_NAME[:100]}"), message[:200]
        assert re.search(r"\b1,?024\b", message), message
        assert len(message) < 600, "the whole stream name was echoed"
        assert run.states() == []
        assert keys == [], keys
        return
    run.assert_success()
    lengths = sorted(len(key.encode()) for key in keys)
    assert len(keys) == 1 and keys[0].startswith(LONG_STREAM_NAME + "/"), keys
    assert max(lengths) <= S3_MAX_KEY_BYTES, (
        f"the connector accepted a {len(LONG_STREAM_NAME)}-character stream name and wrote keys "
        f"of {lengths} bytes (> {S3_MAX_KEY_BYTES}: AWS answers KeyTooLongError)"
    )


# ---------------------------------------------------------------------------------------------
# Refused inputs: one run each (a refusal ends the sync)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    name: str
    format: dict[str, str]
    bad_line: bytes
    fragment: str  # what the message says right after "Input line N: "


def _bad_state_line() -> bytes:
    message = stream_state("users", {"cursor": "x"})
    return json.dumps(message).encode().replace(b'"x"', b'"caf\xc3 \xff"')


REFUSALS: Final = (
    Refusal(
        "raw NUL byte inside a string",
        JSONL_FORMAT,
        record_line("users", b'{"id":"raw-nul","s":"a\x00b"}'),
        "JSON is malformed",
    ),
    Refusal(
        "NaN literal (JSONL)",
        JSONL_FORMAT,
        record_line("users", b'{"id":"nan","x":NaN}'),
        "JSON is malformed",
    ),
    Refusal(
        "Infinity literal (JSONL)",
        JSONL_FORMAT,
        record_line("users", b'{"id":"inf","x":Infinity}'),
        "JSON is malformed",
    ),
    Refusal(
        "NaN literal (root-level CSV)",
        CSV_ROOT_FORMAT,
        record_line("users", b'{"id":"nan","x":NaN}'),
        "JSON is malformed",
    ),
    Refusal(
        "-Infinity literal (root-level CSV)",
        CSV_ROOT_FORMAT,
        record_line("users", b'{"id":"ninf","x":-Infinity}'),
        "JSON is malformed",
    ),
    Refusal(
        "5,000-deep nesting (JSONL)",
        JSONL_FORMAT,
        record_line("users", b'{"deep":' + nested_lists(NESTING_REFUSED) + b"}"),
        "JSON nested deeper than",
    ),
    Refusal(
        "5,000-deep nesting (root-level CSV)",
        CSV_ROOT_FORMAT,
        record_line("users", b'{"deep":' + nested_lists(NESTING_REFUSED) + b"}"),
        "JSON nested deeper than",
    ),
    Refusal(
        "RECORD without emitted_at",
        JSONL_FORMAT,
        record_line("users", b'{"id":"no-time"}', emitted_at=None),
        "RECORD without a numeric `emitted_at`",
    ),
    Refusal(
        "invalid UTF-8 inside a STATE",
        JSONL_FORMAT,
        _bad_state_line(),
        "STATE `state` holds invalid UTF-8",
    ),
)
BAD_LINE_NUMBER: Final = 5


def refusal_script(bad_line: bytes) -> Script:
    """A state with nothing before it (released at once), two records and their state (held:
    their object is still open), the bad line (line 5), then more that must never be read."""
    s = Script()
    s.state("users", 0)
    s.record("users", b'{"id":1}')
    s.record("users", b'{"id":2}')
    s.raw(json.dumps(stream_state("users", {"cursor": 2})).encode())
    assert s.raw(bad_line) == BAD_LINE_NUMBER
    s.record("users", b'{"id":3}')
    s.raw(json.dumps(stream_state("users", {"cursor": 3})).encode())
    return s


@pytest.mark.parametrize("case", REFUSALS, ids=[case.name for case in REFUSALS])
def test_refused_line_stops_the_sync_naming_it(
    case: Refusal, s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """Not valid JSON (raw NUL, NaN, Infinity), too deep to read safely, or against the
    protocol: the sync stops at that line and says which. Only the first state, which had no
    record before it, may be printed; the records of the open object are not in S3."""
    s = refusal_script(case.bad_line)
    catalog = configured_catalog(
        ["users"], json_schema={"type": "object", "properties": {"id": {}, "x": {}}}
    )
    config = make_config(bucket, format=case.format)
    run = run_write(config, catalog, s.stdin(), timeout=RUN_TIMEOUT_S)

    message = assert_refused(run, BAD_LINE_NUMBER, case.fragment)
    assert len(message) < 600, f"the error message is {len(message)} characters long"
    assert run.states() == [s.states[0]]
    assert s3.list_keys(bucket) == []
    assert s3.list_multipart_uploads(bucket) == []


def _released_then(config: dict[str, Any], bad: bytes) -> tuple[ConnectorRun, Message]:
    """Two records and a state, wait until the state is printed (its records are durable), then
    the bad bytes as they are and EOF."""
    first_state = stream_state("users", {"cursor": 2})
    with start_write(
        config, configured_catalog(["users"]), env={"DESTINATION_S3_TICK_SECONDS": "0.05"}
    ) as process:
        process.send_many(
            [record_line("users", b'{"id":1}'), record_line("users", b'{"id":2}'), first_state]
        )
        printed = process.wait_for_type("STATE", timeout=30)
        stdin = process.process.stdin  # raw: send() would add the newline a truncation lacks
        assert stdin is not None
        stdin.write(bad)
        stdin.flush()
        run = process.finish(timeout=RUN_TIMEOUT_S)
    return run, printed


def assert_released_before(
    run: ConnectorRun, printed: Message, s3: MotoServer, bucket: str
) -> None:
    """The state printed before the bad line is printed once and its two records are in S3."""
    expected_state = with_destination_count(stream_state("users", {"cursor": 2}), 2)
    assert printed["state"] == expected_state
    assert run.states() == [expected_state]
    written = [
        data for datas in jsonl_data_by_stream(data_objects(s3, bucket)).values() for data in datas
    ]
    assert written == [b'{"id":1}', b'{"id":2}']
    assert s3.list_multipart_uploads(bucket) == []


def test_truncated_last_line_at_eof_is_refused_after_released_states(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """A source that dies mid-line leaves half a record and no newline. Dropping it quietly
    would lose it; writing it is impossible: the sync fails naming the line, and what was
    acknowledged before it stays."""
    config = make_config(bucket, flush_interval_seconds=1)
    truncated = record_line("users", b'{"id":3}')[:-2]  # no closing braces, no newline
    run, printed = _released_then(config, truncated)
    message = assert_refused(run, 4, "")
    assert "truncated" in message, message
    assert_released_before(run, printed, s3, bucket)


@pytest.mark.slow
def test_10_mb_garbage_line_is_refused_without_echoing_it(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    """Ten megabytes of binary garbage on one line: refused naming the line, with a short
    excerpt only (never megabytes in a log), after the acknowledged state."""
    rng = random.Random(10)
    garbage = rng.randbytes(GARBAGE_BYTES).replace(b"\n", b" ") + b"\n"
    config = make_config(bucket, flush_interval_seconds=1)
    run, printed = _released_then(config, garbage)
    assert_refused(run, 4, "")
    assert len(run.stdout) + len(run.stderr) < 20_000, "the garbage line was echoed"
    assert_released_before(run, printed, s3, bucket)


# ---------------------------------------------------------------------------------------------
# The corpus, counted for README ("inputs tried")
# ---------------------------------------------------------------------------------------------

STANDALONE_CASES: Final = (
    "integer of 5,000 digits (root-level CSV)",
    "number beyond the double range, 1e400 (root-level CSV)",
    "bare CR in data with 1e400 and a 5,000-digit integer (JSONL)",
    "60 MB record",
    "1,000-character stream name",
    "truncated last line at EOF",
    "10 MB garbage line",
)
CORPUS: Final[tuple[str, ...]] = (
    *JSONL_SCRIPT.cases,
    *CSV_SCRIPT.cases,
    *(case.name for case in REFUSALS),
    *STANDALONE_CASES,
)
assert len(set(CORPUS)) == len(CORPUS), "corpus case names must be unique"
INPUTS_TRIED: Final = len(CORPUS)
"""How many hostile inputs this module feeds the connector (README quotes it)."""


@pytest.fixture(scope="module", autouse=True)
def _report_corpus_size(request: pytest.FixtureRequest) -> Iterator[None]:
    """Say at the end of the module how many inputs were tried, for README to quote."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # else pytest swallows teardown output
            reporter.write_line(f"\nhostile input: {INPUTS_TRIED} corpus inputs tried")
