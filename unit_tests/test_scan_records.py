"""The block scanner in C (_scan_records.c) against msgspec: what it takes, msgspec takes the same.

The scanner parses untrusted stdin in C, so it is held to the msgspec path on seeded corpora:
- line by line (over 100,000 lines: RECORD envelopes in every spelling, fields in any order,
  unknown keys, escapes, odd numbers and emitted_at values, then truncated, flipped and inserted
  bytes and random ones): when the scanner takes a line, msgspec decodes it to the same stream,
  namespace, emitted_at and `data` bytes, and the Python loop takes it with the same effects; when
  it leaves a line, it changed nothing;
- block by block: an Intake with the scanner and one without it hand their writers the same
  records (same line, number and emitted_at), hold the same states and stop with the same error.
`make asan` runs this file under AddressSanitizer too.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from destination_s3 import plain_records
from destination_s3.messages import ENVELOPE_DECODER
from unit_tests.speedups_corpus import valid_object
from unit_tests.speedups_support import require_speedups
from unit_tests.test_plain_records import _LoopRoute, _run, _sequences

LINES = 120_000
SEQUENCES = 3_000

_STREAMS = [
    (None, "users"),
    ("shop", "orders"),
    ("", "orders"),
    (None, "é流"),
    (None, "boom"),  # its encoder refuses data holding "boom"
    (None, "unrouted"),  # known to no route: the scanner must leave it
]
_EMITTED = [
    "1700000000000", "0", "-0", "-5", "1700000000000.0", "2e12", "1E3", "017", "-", "1.",
    "999999999999999999", "1000000000000000000", "-999999999999999999", str(2**70), "true",
    '"1700000000000"', "null", "1700000000000 ", "[1]",
]  # fmt: skip
_UNKNOWN = [
    ('"meta"', '{"changes":[{"field":"x","change":"NULLED"}]}'),
    ('"file_reference"', "null"),
    ('"x"', '"\\u00e9\\ud83d\\ude00"'),
    ('"sourceStats"', '{"recordCount":1.0}'),
    ('"e\\u0078tra"', "1"),
]
_SPACES = ["", "", "", " ", "\t", "  ", " \t"]


def _stream_members(rng: random.Random) -> list[str]:
    namespace, stream = rng.choice(_STREAMS)
    members = []
    roll = rng.random()
    if roll < 0.04:
        members.append('"stream":"us\\u0065rs"')  # an escape: msgspec's to read
    elif roll < 0.06:
        members.append('"stream":"caf\xff"')  # invalid UTF-8 (a lone byte, written as latin-1)
    elif roll > 0.02:
        members.append(f'"stream":{json.dumps(stream, ensure_ascii=rng.random() < 0.2)}')
    if namespace is not None:
        members.append(f'"namespace":{json.dumps(namespace)}')
    elif rng.random() < 0.3:
        members.append('"namespace":null')
    if rng.random() < 0.97:
        emitted = rng.choice(_EMITTED) if rng.random() < 0.3 else _EMITTED[0]
        members.append(f'"emitted_at":{emitted}')
    return members


def _record_line(rng: random.Random) -> bytes:
    """One RECORD line, spelled as a source might (or nearly)."""
    data = valid_object(rng).decode("utf-8", "surrogatepass").replace("\n", " ")
    if rng.random() < 0.05 and data.endswith("}") and len(data) > 2:
        data = data[:-1] + ',"boom":"boom"}'  # refused by every route's encoder
    members = _stream_members(rng)
    if rng.random() < 0.98:
        members.append(f'"data":{data}')
    if rng.random() < 0.15:
        members.append(":".join(rng.choice(_UNKNOWN)))
    if rng.random() < 0.02:
        members.append(rng.choice(members))  # a field given twice
    rng.shuffle(members)
    space = rng.choice(_SPACES)
    record = "{" + space + ("," + space).join(members) + space + "}"
    kind = rng.choice(["RECORD"] * 12 + ["STATE", "RECO\\u0052D", "record"])
    envelope = [f'"type":"{kind}"', f'"record":{record}']
    roll = rng.random()
    if roll < 0.1:
        envelope.append(":".join(rng.choice(_UNKNOWN)))
    elif roll < 0.12:
        envelope.append('"state":{"a":1}')
    elif roll < 0.14:
        envelope.append(rng.choice(envelope))
    rng.shuffle(envelope)
    separator = rng.choice([",", ", ", " ,\t", ",\r"] if rng.random() < 0.05 else [",", ", "])
    line = rng.choice(_SPACES) + "{" + separator.join(envelope) + "}" + rng.choice(_SPACES)
    return line.encode("utf-8", "surrogatepass").replace("\xff".encode(), b"\xff")


def _mutated(rng: random.Random, line: bytes) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return line[: rng.randrange(0, len(line) + 1)]
    position = rng.randrange(len(line) + 1)
    if roll < 0.6:
        return line[:position] + bytes([rng.randrange(256)]) + line[position + 1 :]
    if roll < 0.9:
        inserted = rng.choice(
            [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b'"', b"\\", b"{", b"}", b",", b" ",
             b"\r", b"\t", b":", b"[", b"-", b"0", b"e", b"\\u"]
        )  # fmt: skip
        return line[:position] + inserted + line[position:]
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))


def lines(seed: int, count: int) -> Iterator[bytes]:
    """`count` single lines (no newline): about three quarters well-formed, the rest broken."""
    rng = random.Random(seed)
    for _ in range(count):
        line = _record_line(rng)
        yield line if rng.random() < 0.75 else _mutated(rng, line).replace(b"\n", b" ")


def _routes() -> dict[Any, _LoopRoute]:
    return {
        "users": _LoopRoute(),
        ("shop", "orders"): _LoopRoute(),
        ("", "orders"): _LoopRoute(),
        "é流": _LoopRoute(),
        "boom": _LoopRoute(),
    }


_LAST_EMITTED = [None, 1700000000000, 1700000000000.0, 5, True, 2**70]


def _take(
    take: Callable[..., tuple[Any, ...]], first: Any, last_emitted_at: Any = None
) -> tuple[tuple[Any, ...], dict[Any, Any], int]:
    routes, pending = _routes(), []  # type: list[Any]
    counter = itertools.count()
    text = b"" if last_emitted_at is None else str(int(last_emitted_at)).encode()
    taken = take(
        first, 0, routes, pending, lambda: b"id%d" % next(counter), 7, last_emitted_at, text
    )
    state = {key: vars(route) for key, route in routes.items() if route.lines}
    return taken, state, len(pending)


@pytest.fixture(scope="module")
def scan() -> plain_records.ScanPlain:
    require_speedups()
    from destination_s3 import _speedups

    return _speedups.scan_plain_records


def _compare_with_msgspec(
    scan: plain_records.ScanPlain, line: bytes, block: bytes, start: Any
) -> str:
    """Scan `block` (`line` and its end), in a buffer of its exact size (no NUL after it, for
    AddressSanitizer), after a record whose emitted_at was `start`; check the outcome against
    msgspec and the Python loop. Returns the verdict."""
    exact = (ctypes.c_char * len(block)).from_buffer_copy(block)
    (offset, record_number, last, text), state, pending = _take(scan, exact, start)
    try:
        envelope = ENVELOPE_DECODER.decode(line)
    except Exception:
        envelope = None
    start_text = b"" if start is None else str(int(start)).encode()
    if not state:  # left: nothing added, and it stopped at the line (or skipped a blank)
        assert (record_number, pending) == (7, 0), line
        if (last, text) != (start, start_text) or type(last) is not type(start):
            # The encoder refused it after the emitted_at was read, as in the loop.
            assert envelope is not None, line
            expected = _take(plain_records.take_plain_records, [envelope], start)
            assert expected[0] == (0, plain_records.NEEDS_LOOK, 7, last, text), line
        assert offset == (len(block) if not line.strip(b" \t\r") else 0), line
        return "left, refused" if envelope is None else "left, valid"
    assert envelope is not None, line  # msgspec must accept what the scanner took
    expected = _take(plain_records.take_plain_records, [envelope], start)
    assert expected[0] == (1, plain_records.END, record_number, last, text), line
    assert type(expected[0][3]) is type(last), line
    assert (expected[1], expected[2]) == (state, pending), line
    assert offset == len(block)
    return "taken"


def test_what_the_scanner_takes_msgspec_takes_the_same_way(scan: plain_records.ScanPlain) -> None:
    verdicts = {"taken": 0, "left, valid": 0, "left, refused": 0}
    rng = random.Random(7)
    for line in lines(seed=20261207, count=LINES):
        # With or without its newline, after a record whose emitted_at may be this one's.
        block = line + rng.choice([b"\n", b"\r\n", b""])
        verdicts[_compare_with_msgspec(scan, line, block, rng.choice(_LAST_EMITTED))] += 1
    # The corpus leans to the unusual (a fifth of its well-formed lines are left on purpose:
    # escapes, floats, duplicates, deep nesting, unrouted streams); every outcome is reached.
    assert verdicts["taken"] > LINES // 5, verdicts
    assert min(verdicts.values()) > LINES // 50, verdicts


# What ends a run of plain text in a JSON string, as the scanner sees it (as written in a line).
_STRING_STOPS = [
    b'\\"', b"\\\\", b"\\n", b"\\u00e9", b"\\ud83d\\ude00", b"\x01", b"\x1f", b"\x7f", "é".encode(),
    "流".encode(), "😀".encode(), b"\xc3", b"\xe6\xb5", b"\xff", b"\xed\xa0\x80", b'"',
]  # fmt: skip


def test_a_string_stop_at_every_offset_of_a_16_byte_load(scan: plain_records.ScanPlain) -> None:
    """The scanner looks for the end of plain string text 16 bytes at a time (SSE2): each
    escape, control character, UTF-8 sequence (valid, cut short or invalid) and quote, at every
    offset of the first two loads of a stream name and of a value, up to the line's end, is
    taken or left as msgspec and the Python loop say."""
    verdicts = {"taken": 0, "left, valid": 0, "left, refused": 0}
    for stop in _STRING_STOPS:
        for offset in range(0, 40):
            text = b"a" * offset + stop + b"b" * (40 - offset)
            value = b'{"type":"RECORD","record":{"stream":"users","emitted_at":5,"data":{"k":"'
            for line in (
                value + text + b'"}}}',
                value + text,  # the line ends inside the string
                b'{"type":"RECORD","record":{"emitted_at":5,"data":{},"stream":"' + text + b'"}}',
            ):
                for block in (line, line + b"\n"):
                    verdicts[_compare_with_msgspec(scan, line, block, None)] += 1
    assert min(verdicts.values()) > 100, verdicts


def test_benchmark_and_protocol_spellings_are_taken_by_the_scanner(
    scan: plain_records.ScanPlain,
) -> None:
    """The spellings sources write (compact, json.dumps' default spaces, ASCII escapes, extra
    fields) stay on the fast path: a scanner that left them all would pass every other test."""
    spellings = [
        b'{"type":"RECORD","record":{"stream":"users","emitted_at":1,"data":{"id":1}}}',
        b'{"type": "RECORD", "record": {"stream": "users", "data": {"a": "\\u00e9"}, '
        b'"emitted_at": 1700000000000}}',
        b'{"record":{"namespace":"shop","stream":"orders","data":{},"emitted_at":-3,'
        b'"meta":{"changes":[]}},"type":"RECORD"}',
        b'\t{"type":"RECORD","record":{"stream":"\xc3\xa9\xe6\xb5\x81","emitted_at":0,'
        b'"namespace":null,"data":{"x":[1.5e3,true,null,"\\ud83d\\ude00"]}}}  ',
        b'{"type":"RECORD","record":{"stream":"users","emitted_at":1,"data":{"id":1}}}\r\n',
    ]
    for line in spellings:
        (offset, record_number, _, _), state, _ = _take(scan, line)
        assert (offset, record_number) == (len(line), 8) and state, line


def _flattened(calls: list[Any]) -> list[Any]:
    """The effects that matter, without how records were grouped into add_lines calls (a block
    taken whole groups a stream's records, one taken line by line adds them one at a time): each
    stream's lines with their emitted_at, in order, and the number of its first record; the
    routes in the order they were opened; the states held; the error; the end counts. In a
    sequence without error, every add must also name its first line's record number."""
    streams: dict[str, list[Any]] = {}
    clean = not any(call[0] == "error" for call in calls)
    for call in calls:
        if call[0] == "add":
            _, name, added, first, emitted = call
            if clean:  # ids are drawn one per record then: `id-N` is record N
                assert re.search(rb"id-(\d+)", added[0])[1] == b"%d" % first, call  # type: ignore[index]
            stream = streams.setdefault(name, [first])
            stream.extend(zip(added, map(repr, emitted), strict=True))
    return [streams, [call for call in calls if call[0] != "add"]]


def _block_sequences(seed: int, count: int) -> Iterator[list[bytes]]:
    """Blocks mixing the scanner corpus's lines with test_plain_records' messages."""
    rng = random.Random(seed)
    corpus = lines(seed, count * 8)
    for blocks in _sequences(seed, count):
        mixed = []
        for block in blocks:
            parts = block.split(b"\n")
            for _ in range(rng.randrange(0, 4)):
                parts.insert(rng.randrange(len(parts) + 1), next(corpus))
            mixed.append((b"\r\n" if rng.random() < 0.1 else b"\n").join(parts))
        yield mixed


def test_intake_with_the_scanner_has_the_msgspec_paths_effects(
    scan: plain_records.ScanPlain,
) -> None:
    outcomes = {"error": 0, "clean": 0}
    for blocks in _block_sequences(seed=4242, count=SEQUENCES):
        expected = _run(plain_records.take_plain_records, blocks, scan_plain=None)
        assert _flattened(_run(plain_records.TAKE_PLAIN_RECORDS, blocks, scan)) == _flattened(
            expected
        ), blocks
        outcomes["error" if any(call[0] == "error" for call in expected) else "clean"] += 1
    assert min(outcomes.values()) > SEQUENCES // 10, outcomes


def test_scanner_passes_on_errors_it_does_not_own(scan: plain_records.ScanPlain) -> None:
    """An encoder's ValueError leaves the line (the line-by-line step names it); any other
    exception propagates, as from the loop over msgspec's envelopes."""

    class Broken(_LoopRoute):
        @staticmethod
        def encode(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
            raise KeyError("not ours")

    block = b'{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":"boom"}}}\n'
    assert scan(block, 0, {"s": _LoopRoute()}, [], lambda: b"i", 0, None, b"")[:2] == (0, 0)
    with pytest.raises(KeyError):
        scan(block, 0, {"s": Broken()}, [], lambda: b"i", 0, None, b"")


@pytest.mark.parametrize(
    ("block", "start", "error"),
    [
        (b"{}", -1, ValueError),
        (b"{}", 3, ValueError),
        ("{}", 0, TypeError),  # not a buffer
    ],
)
def test_scanner_refuses_arguments_outside_its_contract(
    scan: plain_records.ScanPlain, block: Any, start: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        scan(block, start, {}, [], lambda: b"i", 0, None, b"")


def test_scanner_starts_at_the_offset_and_returns_the_line_it_left() -> None:
    require_speedups()
    from destination_s3 import _speedups

    record = b'{"type":"RECORD","record":{"stream":"users","emitted_at":5,"data":{}}}'
    state = b'{"type":"STATE","state":{"a":1}}'
    block = b"\n".join([b"garbage", record, b"  \t", record, state, record]) + b"\n"
    routes, pending = _routes(), []  # type: ignore[var-annotated]
    start = len(b"garbage\n")
    taken = _speedups.scan_plain_records(block, start, routes, pending, lambda: b"i", 3, None, b"")
    assert taken == (block.index(state), 5, 5, b"5")
    assert routes["users"].lines == [b"i|5|{}", b"i|5|{}"] and routes["users"].first_record == 3


def test_a_block_the_scanner_mostly_leaves_goes_to_msgspecs_block_path() -> None:
    """A source whose every record the scanner leaves (a float emitted_at) costs msgspec's block
    path, not a msgspec call per line: after LINES_LEFT_PER_BLOCK lines left, the rest of the
    block is decoded in one call. The effects are the msgspec path's."""
    require_speedups()
    from destination_s3 import _speedups
    from destination_s3.intake import LINES_LEFT_PER_BLOCK

    calls: list[int] = []

    def counting_scan(*args: Any) -> Any:
        calls.append(args[1])
        return _speedups.scan_plain_records(*args)

    floats = [
        b'{"type":"RECORD","record":{"stream":"users","emitted_at":%d.0,"data":{"i":%d}}}' % (i, i)
        for i in range(40)
    ]
    plain = b'{"type":"RECORD","record":{"stream":"users","emitted_at":1,"data":{}}}'
    blocks = [b"\n".join([plain, *floats, plain]) + b"\n", plain + b"\n"]
    scanned = _run(plain_records.TAKE_PLAIN_RECORDS, blocks, counting_scan)
    assert _flattened(scanned) == _flattened(_run(plain_records.take_plain_records, blocks))
    # First block: the first call, then one after each line left (the first of them opened the
    # route), up to the limit; the second block: one call.
    assert len(calls) == LINES_LEFT_PER_BLOCK + 1 + 1
    assert len(scanned[1][2]) == 42  # the block's records, added in one call


def _interleaved_block(streams: list[tuple[str | None, str]], rounds: int) -> bytes:
    lines = []
    for turn in range(rounds):
        for index, (namespace, name) in enumerate(streams):
            record: dict[str, Any] = {"stream": name, "emitted_at": 1700000000000 + turn}
            if namespace is not None:
                record["namespace"] = namespace
            record["data"] = {"i": index, "turn": turn}
            line = json.dumps({"type": "RECORD", "record": record}, ensure_ascii=False)
            lines.append(line.encode())  # raw UTF-8: the scanner leaves escaped names
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("count", [3, 64, 300])
def test_streams_of_one_block_are_taken_as_the_python_loop_takes_them(
    scan: plain_records.ScanPlain, count: int
) -> None:
    """The scanner remembers the routes it used in a call (64 slots, by a hash of the names);
    with more streams than slots some share a slot and are looked up record by record. Either
    way each stream gets its own records, in order, as from the loop over msgspec's envelopes.
    Names of one length (and namespaces, and a name that is also a namespaced one's) make the
    comparisons that tell slot sharers apart do their work."""
    streams: list[tuple[str | None, str]] = [(None, f"s{index:04d}") for index in range(count)]
    streams[1::3] = [("ns", name) for _, name in streams[1::3]]
    streams[2::5] = [(None, f"é{index:03d}") for index in range(len(streams[2::5]))]
    block = _interleaved_block(streams, rounds=4)
    exact = (ctypes.c_char * len(block)).from_buffer_copy(block)  # no NUL after it (ASan)

    def take(
        function: Callable[..., tuple[Any, ...]], first: Any
    ) -> tuple[tuple[Any, ...], dict[Any, Any], list[int]]:
        routes = {name if ns is None else (ns, name): _LoopRoute() for ns, name in streams}
        pending: list[Any] = []
        counter = itertools.count()
        taken = function(first, 0, routes, pending, lambda: b"id%d" % next(counter), 0, None, b"")
        state = {key: vars(route) for key, route in routes.items()}
        order = {id(route): position for position, route in enumerate(routes.values())}
        return taken, state, [order[id(route)] for route in pending]

    scanned = take(scan, exact)
    envelopes = ENVELOPE_DECODER.decode_lines(block)
    looped = take(plain_records.take_plain_records, envelopes)
    assert scanned[0][:2] == (len(block), 4 * count)
    assert looped[0][:3] == (len(envelopes), plain_records.END, 4 * count)
    assert scanned[1:] == looped[1:]
    assert all(len(route["lines"]) == 4 for route in scanned[1].values())


def test_a_route_without_a_lines_list_is_refused_by_both_paths(
    scan: plain_records.ScanPlain,
) -> None:
    class NoList(_LoopRoute):
        def __init__(self) -> None:
            super().__init__()
            self.lines = ()  # type: ignore[assignment]

    block = b'{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":1}}}\n'
    envelopes = ENVELOPE_DECODER.decode_lines(block)
    for take, first in ((scan, block), (plain_records.TAKE_PLAIN_RECORDS, envelopes)):
        with pytest.raises(TypeError, match="lines"):
            take(first, 0, {"s": NoList()}, [], lambda: b"i", 0, None, b"")
