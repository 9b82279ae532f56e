"""A seeded corpus of RECORD `data` bodies for the C encoder's differential test.

Valid objects in every spelling a source may use (compact, spaced, pretty-printed, ASCII-escaped
or raw UTF-8), with the values that make CSV hard (quotes, commas, CR/LF, escapes of every kind,
surrogate pairs, huge numbers, deep nesting), keys the schema does not declare, repeated and
escaped keys; and broken ones: truncated, flipped and inserted bytes, invalid UTF-8, random bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

# The encoder's columns: awkward names on purpose (a comma, a quote, non-ASCII, a backslash).
COLUMNS = ["id", "name", "a,b", 'q"x', "é", "back\\slash", "nested", "n", "s", "t", "k5"]
# Names JSON must escape (or that an ASCII-only source escapes) send a record to the fallback:
# used in a few records only, so that the C encoder writes most rows itself.
_ESCAPED_COLUMNS = ['q"x', "é", "back\\slash"]
_PLAIN_COLUMNS = [name for name in COLUMNS if name not in _ESCAPED_COLUMNS]
UNDECLARED = ["extra", "_tarsal_ab_id", "_tarsal_additional_properties", "Id", "ключ"]

_TEXT_PIECES = [
    "plain",
    " ",
    '"',
    "\\",
    ",",
    "\n",
    "\r",
    "\t",
    "/",
    "\x00",
    "\x1f",
    "\x7f",
    "é",
    "中文",
    "😀",
    "\u2028",
    "O'Brien",
    '""',
    ",,",
    "\r\n",
]
_NUMBER_TEXTS = [
    "0",
    "-0",
    "1.50",
    "1E5",
    "1e+05",
    "-2.5e-8",
    "123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "1.7976931348623157e309",
    "0.1",
]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_TEXT_PIECES) for _ in range(rng.randrange(0, 6)))


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if roll < 0.35:
        return _text(rng)
    if roll < 0.5:
        return rng.choice([rng.randrange(-(10**6), 10**6), rng.uniform(-1e6, 1e6), 10**30])
    if roll < 0.6:
        return rng.choice([True, False, None])
    if depth > 3:
        return _text(rng)
    if roll < 0.8:
        return {_text(rng) or "k": _value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}
    return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def _value_text(rng: random.Random, ensure_ascii: bool, separators: tuple[str, str]) -> str:
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(_NUMBER_TEXTS)
    if roll < 0.11:
        # Nesting around the C encoder's depth limit (64), and a surrogate-escape edge.
        depth = rng.choice([1, 63, 64, 65, 66, 200])
        return "[" * depth + rng.choice(["", "1", '"x"', "{}"]) + "]" * depth
    if roll < 0.14:
        return rng.choice(['"\\ud83d\\ude00"', '"\\ud800"', '"\\udc00"', '"\\u0022\\u002c"'])
    return json.dumps(_value(rng, 0), ensure_ascii=ensure_ascii, separators=separators)


def valid_object(rng: random.Random) -> bytes:
    """One `data` object, written by hand so that keys may repeat and spacing may vary."""
    ensure_ascii = rng.random() < 0.4
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,\t", " :\n")])
    keys = rng.sample(_PLAIN_COLUMNS, rng.randrange(0, len(_PLAIN_COLUMNS) + 1))
    if rng.random() < 0.1:
        keys.append(rng.choice(_ESCAPED_COLUMNS))
    if rng.random() < 0.2:
        keys.append(rng.choice(UNDECLARED))
    if rng.random() < 0.05 and keys:
        keys.append(rng.choice(keys))  # a repeated key
    if rng.random() < 0.5:
        keys.sort(key=COLUMNS.index if all(key in COLUMNS for key in keys) else str)
    members = [
        json.dumps(key, ensure_ascii=ensure_ascii)
        + separators[1]
        + _value_text(rng, ensure_ascii, separators)
        for key in keys
    ]
    space = rng.choice(["", " ", "\n", " \t"])
    text = "{" + space + separators[0].join(members) + space + "}"
    return text.encode("utf-8", "surrogatepass")


def _mutated(rng: random.Random, data: bytes) -> bytes:
    roll = rng.random()
    if not data or roll < 0.3:
        return data[: rng.randrange(0, len(data) + 1)]  # truncated
    position = rng.randrange(len(data))
    if roll < 0.6:
        return data[:position] + bytes([rng.randrange(256)]) + data[position + 1 :]  # flipped
    if roll < 0.8:
        inserted = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b'"', b"\\", b"{"])
        return data[:position] + inserted + data[position:]
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))  # random bytes


def corpus(seed: int, count: int) -> Iterator[bytes]:
    """`count` data bodies: about three quarters valid objects, the rest broken."""
    rng = random.Random(seed)
    for _ in range(count):
        data = valid_object(rng)
        yield data if rng.random() < 0.75 else _mutated(rng, data)
