"""The intake's hot loop in C against its Python twin: the same effects on every input.

Two Intakes, one with plain_records.take_plain_records and one with the C version, take the same
seeded corpus of stdin blocks (records of known, namespaced and unknown streams; data that is
ASCII, UTF-8, invalid UTF-8, not an object, with a CR, deeply nested; emitted_at as int, float,
huge; STATEs good and bad; other message types; broken lines) and must hand their writers the
same lines, record numbers and emitted_at values, hold the same states, count the same UTF-8
repairs and stop with the same error. `make asan` runs this file under AddressSanitizer too.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from destination_s3 import plain_records
from destination_s3.config import OutputFormat
from destination_s3.encoders import LineEncoder, encoder_for
from destination_s3.errors import InputError
from destination_s3.intake import Intake
from destination_s3.messages import is_utf8
from unit_tests.speedups_support import require_speedups

KNOWN = {(None, "users"), (None, "orders"), ("shop", "orders"), (None, "wide")}
WIDE_COLUMNS = ["id", "name", "note"]  # "wide" is root-level CSV (the C row encoder too)
SEQUENCES = 3_000


class _Writer:
    def __init__(self, calls: list[Any], name: str) -> None:
        self._calls, self._name = calls, name
        self.records_added = 0

    def add_lines(self, lines: list[bytes], first_record: int, emitted_at: list[Any]) -> None:
        self._calls.append(("add", self._name, list(lines), first_record, list(emitted_at)))
        self.records_added += len(lines)


class _Router:
    def __init__(self, calls: list[Any]) -> None:
        self._calls = calls

    def knows(self, namespace: str | None, name: str) -> bool:
        return (namespace or None, name) in KNOWN

    def route(self, namespace: str | None, name: str) -> tuple[_Writer, LineEncoder]:
        if not self.knows(namespace, name):
            from destination_s3.router import UnknownStream

            raise UnknownStream(f"stream {name!r} is not in the catalog")
        self._calls.append(("route", namespace, name))
        output = OutputFormat.CSV_ROOT_LEVEL if name == "wide" else OutputFormat.JSONL
        _, encode = encoder_for(output, WIDE_COLUMNS)
        return _Writer(self._calls, f"{namespace}.{name}"), encode


class _Ledger:
    def __init__(self, calls: list[Any]) -> None:
        self._calls = calls

    def hold(self, body: bytes, records: int, count: Any, now: float) -> None:
        self._calls.append(("hold", body, records, count))


def _run(
    take_plain: plain_records.TakePlain,
    blocks: list[bytes],
    scan_plain: plain_records.ScanPlain | None = None,
) -> list[Any]:
    """The calls an Intake makes on its router, writers and ledger; with `scan_plain` None
    (the default here) every block goes through msgspec and `take_plain`."""
    calls: list[Any] = []
    counter = itertools.count()
    intake = Intake(
        _Router(calls),  # type: ignore[arg-type]
        _Ledger(calls),  # type: ignore[arg-type]
        lambda: 0.0,
        take_plain=take_plain,
        scan_plain=scan_plain,
        record_ids=lambda: b"id-%d" % next(counter),
    )
    try:
        for block in blocks:
            intake.take(block)
    except InputError as refused:
        calls.append(("error", str(refused)))
    repairs = {stream: intake.repairs.count(*stream) for stream in sorted(KNOWN, key=str)}
    calls.append(("end", intake.records, intake.lines_read, repairs))
    return calls


def _data(rng: random.Random, hostile: bool) -> bytes:
    roll = rng.random() if hostile else rng.random() * 0.8
    value: dict[str, Any] = {"id": rng.randrange(10**6), "name": rng.choice(["a", "é", "x,y"])}
    if roll < 0.6:
        return json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
    if roll < 0.7:
        return json.dumps({**value, "extra": [1, {"k": "v"}]}).encode()  # undeclared (CSV)
    if roll < 0.75:
        return b'{"name":"caf\xc3' + b'\xa9 \xff"}'  # invalid UTF-8: repaired line by line
    if roll < 0.8:
        return b'{"id":1,\r"name":"cr"}'  # a bare CR between tokens
    if roll < 0.83:
        return rng.choice([b"[1]", b'"text"', b"null", b"7"])  # not an object
    if roll < 0.86:
        return b'{"note":' + b"[" * 70 + b"]" * 70 + b"}"
    if roll < 0.9:
        return b'{"name":"\xed\xa0\x80"}'  # a UTF-8-encoded surrogate: invalid
    return json.dumps({"note": "".join(rng.choices('aé中😀"\\,\n', k=20))}).encode()


def _line(rng: random.Random, hostile: bool) -> bytes:
    """One stdin line; only a hostile one may be a line the connector refuses."""
    roll = rng.random() if hostile else rng.random() * 0.88
    if roll < 0.7:
        namespace, stream = rng.choice(sorted(KNOWN, key=str))
        if hostile and rng.random() < 0.05:
            namespace, stream = None, "unknown"
        emitted = rng.choice(["1700000000000", "1700000000000.0", "1700000000001", "2e12", "-5"])
        if rng.random() < 0.02:
            emitted = str(2**70)
        ns = "" if namespace is None else f'"namespace":"{namespace}",'
        return (
            f'{{"type":"RECORD","record":{{{ns}"stream":"{stream}","emitted_at":{emitted},'
            f'"data":'.encode()
            + _data(rng, hostile)
            + b"}}"
        )
    if roll < 0.8:
        bodies = [b'{"type":"LEGACY","data":{"c":1}}', b'{"c":"\xc3\xa9"}']
        body = rng.choice([*bodies, b'{"c":"\xff"}', b"[]"] if hostile else bodies)
        return b'{"type":"STATE","state":' + body + b"}"
    if roll < 0.88:
        return rng.choice(
            [
                b'{"type":"LOG","log":{"level":"INFO","message":"hi"}}',
                b'{"type":"TRACE","trace":{"type":"ERROR"}}',
                b'{"type":"CONTROL","control":{}}',
                b"",
                b"   ",
            ]
        )
    return rng.choice(
        [
            b'{"type":"RECORD","record":null}',
            b'{"type":"WHAT"}',
            b'{"type":"RECORD","record":{"stream":"users","data":{}}}',  # no emitted_at
            b'{"type":"RECORD","record":{"stream":"users","emitted_at":1,"data":{"a":tru}}}',
            b"not json",
        ]
    )


def _sequences(seed: int, count: int) -> Iterator[list[bytes]]:
    rng = random.Random(seed)
    for _ in range(count):
        blocks = []
        hostile = rng.random() < 0.3
        for _ in range(rng.randrange(1, 4)):
            lines = [
                _line(rng, hostile and rng.random() < 0.2) for _ in range(rng.randrange(1, 40))
            ]
            blocks.append(b"\n".join(lines) + (b"\n" if rng.random() < 0.9 else b""))
        yield blocks


@pytest.fixture(scope="module")
def c_take_plain() -> plain_records.TakePlain:
    require_speedups()
    from destination_s3 import _speedups

    return _speedups.take_plain_records


def test_c_loop_has_the_python_loops_effects_on_a_seeded_corpus(
    c_take_plain: plain_records.TakePlain,
) -> None:
    outcomes = {"error": 0, "clean": 0}
    added = 0
    for blocks in _sequences(seed=20261207, count=SEQUENCES):
        expected = _run(plain_records.take_plain_records, blocks)
        assert _run(c_take_plain, blocks) == expected, blocks
        outcomes["error" if any(call[0] == "error" for call in expected) else "clean"] += 1
        added += sum(len(call[2]) for call in expected if call[0] == "add")
    assert outcomes["error"] > SEQUENCES // 10 and outcomes["clean"] > SEQUENCES // 10
    assert added > SEQUENCES * 10  # records reached the writers, not only errors


def test_c_loop_stops_where_and_why_python_does(c_take_plain: plain_records.TakePlain) -> None:
    """Direct calls: the returned tuple and the routes' state, envelope by envelope."""
    from destination_s3.messages import ENVELOPE_DECODER

    for blocks in _sequences(seed=99, count=300):
        for block in blocks:
            try:
                envelopes = ENVELOPE_DECODER.decode_lines(block)
            except Exception:
                continue
            results = []
            for take in (plain_records.take_plain_records, c_take_plain):
                counter = itertools.count()
                routes = {
                    "users": _LoopRoute(),
                    ("shop", "orders"): _LoopRoute(),
                }
                pending: list[Any] = []
                index, trace = 0, []
                while index < len(envelopes):
                    taken = take(
                        envelopes, index, routes, pending,
                        lambda c=counter: b"%d" % next(c), 0, None, b"",
                    )  # fmt: skip
                    trace.append(taken)
                    index = taken[0] + 1
                state = {key: vars(route) for key, route in routes.items()}
                results.append((trace, state, [id(route) for route in pending]))
            assert results[0][:2] == results[1][:2], block
            assert len(results[0][2]) == len(results[1][2])


class _LoopRoute:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.emitted_at: list[Any] = []
        self.first_record = -1

    @staticmethod
    def encode(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
        if b'"boom"' in data:
            raise ValueError("refused")
        return ab_id + b"|" + emitted_at + b"|" + data


def test_c_loop_passes_on_errors_it_does_not_own(c_take_plain: plain_records.TakePlain) -> None:
    """A ValueError or RecursionError from an encoder means "take this line by line"; any other
    exception is the sync's to handle, from either loop."""
    from destination_s3.messages import ENVELOPE_DECODER

    envelopes = ENVELOPE_DECODER.decode_lines(
        b'{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":1}}}\n'
    )

    class Broken(_LoopRoute):
        @staticmethod
        def encode(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
            raise KeyError("not ours")

    for take in (plain_records.take_plain_records, c_take_plain):
        with pytest.raises(KeyError):
            take(envelopes, 0, {"s": Broken()}, [], lambda: b"i", 0, None, b"")


def _utf8_candidates(seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    pieces = [bytes([value]) for value in range(256)] + [
        "é".encode(),
        "中".encode(),
        "😀".encode(),
        b"\xed\x9f\xbf",  # U+D7FF, the last before the surrogates
        b"\xed\xa0\x80",  # a surrogate
        b"\xee\x80\x80",  # U+E000
        b"\xf4\x8f\xbf\xbf",  # U+10FFFF
        b"\xf4\x90\x80\x80",  # above it
        b"\xe0\x80\xaf",  # overlong
        b"\xf0\x80\x80\xaf",
        b"\xc0\xaf",
    ]
    for _ in range(count):
        yield b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12)))


def test_c_utf8_check_matches_pythons_decoder() -> None:
    require_speedups()
    from destination_s3 import _speedups

    verdicts = {True: 0, False: 0}
    for candidate in _utf8_candidates(seed=5, count=200_000):
        expected = is_utf8(candidate)
        assert _speedups.is_valid_utf8(candidate) is expected, candidate
        verdicts[expected] += 1
    assert min(verdicts.values()) > 10_000


def test_python_twin_is_what_the_intake_uses_without_the_extension() -> None:
    """Both loops exist, and the intake takes the C one when it was built."""
    from destination_s3 import compiled

    expected: Callable[..., Any] = (
        plain_records.take_plain_records
        if compiled.speedups is None
        else compiled.speedups.take_plain_records
    )
    assert plain_records.TAKE_PLAIN_RECORDS is expected


def test_c_newline_count_matches_bytes_count() -> None:
    require_speedups()
    from destination_s3 import _speedups

    rng = random.Random(11)
    for _ in range(20_000):
        block = bytes(rng.choice(b"\n\nab\r{}\x00\xff") for _ in range(rng.randrange(0, 200)))
        assert _speedups.count_newlines(block) == block.count(b"\n")
        exact = (ctypes.c_char * len(block)).from_buffer_copy(block)  # no trailing NUL (ASan)
        assert _speedups.count_newlines(exact) == block.count(b"\n")


class _Record:
    """A duck-typed record whose attribute reads can misbehave, to compare the loops' order."""

    def __init__(self, data: Any, on_namespace: Callable[[_Record], None] | None = None) -> None:
        self.data, self.stream, self.emitted_at = data, "s", 1
        self._on_namespace = on_namespace

    @property
    def namespace(self) -> None:
        if self._on_namespace is not None:
            self._on_namespace(self)
        return None


class _Envelope:
    def __init__(self, record: _Record) -> None:
        self.type, self.record = "RECORD", record


def _raise(error: Exception) -> Callable[..., Any]:
    def fail(*_: Any) -> Any:
        raise error

    return fail


def _mutate_data(record: _Record) -> None:
    record.data[:] = b'["a":"\xff"}'  # after the loop copied `data`: too late to matter


def _fail_namespace(record: _Record) -> None:
    raise KeyError("namespace")


@pytest.mark.parametrize(
    ("data", "on_namespace", "routes", "next_id"),
    [
        pytest.param(bytearray(b'{"a":"x"}'), _mutate_data, "route", None, id="data-changes"),
        pytest.param(b'{"a":1}', _fail_namespace, "route", None, id="namespace-raises"),
        pytest.param(b'{"a":1}', None, "none", None, id="route-is-none"),
        pytest.param(b'{"a":1}', None, "route", ValueError("ids"), id="next-id-valueerror"),
        pytest.param(b'{"a":1}', None, "route", KeyError("ids"), id="next-id-keyerror"),
    ],
)
def test_c_loop_reads_and_calls_in_the_python_loops_order(
    c_take_plain: plain_records.TakePlain,
    data: Any,
    on_namespace: Callable[[_Record], None] | None,
    routes: str,
    next_id: Exception | None,
) -> None:
    outcomes = []
    for take in (plain_records.take_plain_records, c_take_plain):
        envelopes = [
            _Envelope(_Record(data.copy() if isinstance(data, bytearray) else data, on_namespace))
        ]
        route = _LoopRoute()
        ids = _raise(next_id) if next_id is not None else (lambda: b"id")
        try:
            taken = take(
                envelopes, 0, {"s": route if routes == "route" else None}, [], ids, 0, None, b""
            )  # type: ignore[arg-type]
            outcomes.append(("taken", taken, route.lines))
        except Exception as error:
            outcomes.append(("raised", type(error).__name__, str(error)))
    assert outcomes[0] == outcomes[1]
