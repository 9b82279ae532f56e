"""A deterministic Airbyte message stream: RECORD lines round robin over streams, a STATE every K.

Record bodies come from a pool of payloads drawn once from a seeded RNG (nested objects, arrays,
unicode, strings that CSV must quote); each record adds its own `id` and `emitted_at`. Building a
line is then a few byte concatenations, so the generator is far faster than the connector and can
feed the large case through a pipe without being the bottleneck.

Also a command: `python -m benchmarks.generate --records N ...` writes the stream to stdout and a
JSON summary (`records`, `states`, `bytes`) to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

# 2026-11-24T00:00:00Z: fixed, so two runs produce the same bytes.
BASE_EMITTED_AT_MS = 1795478400000
# emitted_at moves by 1 ms every this many records (a source emitting ~100k records/s).
RECORDS_PER_MS = 100
POOL_SIZE = 997  # prime: payloads do not line up with the stream round robin
LINES_PER_CHUNK = 4096

_CITIES = ["Lisboa", "Zürich", "São Paulo", "Kraków", "Osaka", "Austin", "Nairobi", "Montréal"]
_TAGS = ["new", "vip", "churn-risk", "beta", "eu", "us", "trial", "partner", "b2b", "b2c"]
_NAMES = ["Ana", "Bjørn", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gonzalo", 'O"Brien, Jr.']


@dataclass(frozen=True)
class StreamShape:
    """What to generate. `record_size` is the target length of one RECORD line in bytes."""

    records: int = 500_000
    streams: int = 3
    record_size: int = 400
    state_every: int = 10_000
    seed: int = 42

    @property
    def states(self) -> int:
        """STATE messages in the stream: one per `state_every` records, plus one at the end."""
        if self.state_every <= 0:
            return 0
        return -(-self.records // self.state_every)


def stream_names(count: int) -> list[str]:
    width = max(3, len(str(count - 1)))
    return [f"stream_{index:0{width}d}" for index in range(count)]


# Root-level properties of every stream, in schema order (CSV root-level flattening columns).
JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "ref": {"type": "string"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "amount": {"type": "number"},
        "active": {"type": "boolean"},
        "score": {"type": ["null", "integer"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object"},
        "items": {"type": "array", "items": {"type": "object"}},
        "note": {"type": "string"},
    },
}


def configured_catalog(names: list[str]) -> dict[str, Any]:
    return {
        "streams": [
            {
                "stream": {
                    "name": name,
                    "json_schema": JSON_SCHEMA,
                    "supported_sync_modes": ["full_refresh", "incremental"],
                },
                "sync_mode": "full_refresh",
                "destination_sync_mode": "append",
                "generation_id": 1,
                "minimum_generation_id": 0,
                "sync_id": 1,
            }
            for name in names
        ]
    }


def _payload(rng: random.Random) -> dict[str, Any]:
    """One record's `data` without `id` and without the padding in `note`."""
    return {
        "ref": f"{rng.getrandbits(64):016x}",
        "name": f"{rng.choice(_NAMES)} {rng.choice(string.ascii_uppercase)}.",
        "email": f"u{rng.randrange(10**6)}@example.com",
        "created_at": f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T"
        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        "amount": round(rng.uniform(0, 10_000), 2),
        "active": rng.random() < 0.7,
        "score": None if rng.random() < 0.1 else rng.randrange(-1000, 1000),
        "tags": rng.sample(_TAGS, rng.randrange(0, 3)),
        "address": {
            "city": rng.choice(_CITIES),
            "geo": {"lat": round(rng.uniform(-90, 90), 4), "lon": round(rng.uniform(-180, 180), 4)},
        },
        "items": [
            {"sku": f"S{rng.randrange(10**5):05d}", "qty": rng.randrange(1, 9)}
            for _ in range(rng.randrange(0, 3))
        ],
        "note": "",
    }


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _record_line(name: bytes, emitted_at: int, record_id: int, rest: bytes) -> bytes:
    return b"".join(
        (
            b'{"type":"RECORD","record":{"stream":"',
            name,
            b'","emitted_at":',
            str(emitted_at).encode(),
            b',"data":{"id":',
            str(record_id).encode(),
            rest,
            b"}}\n",
        )
    )


def _payload_pool(shape: StreamShape) -> list[bytes]:
    """Each entry is `,"ref":…}`: the data object after its `id`, padded to the line size."""
    rng = random.Random(shape.seed)
    typical_name = stream_names(shape.streams)[-1].encode()
    typical_id = shape.records // 2
    pool = []
    for _ in range(POOL_SIZE):
        payload = _payload(rng)
        rest = b"," + _dumps(payload)[1:]
        length = len(_record_line(typical_name, BASE_EMITTED_AT_MS, typical_id, rest))
        # Too long for the target size: drop optional fields, the largest first.
        for optional in ("items", "address", "tags"):
            if length <= shape.record_size:
                break
            payload[optional] = [] if optional != "address" else {}
            rest = b"," + _dumps(payload)[1:]
            length = len(_record_line(typical_name, BASE_EMITTED_AT_MS, typical_id, rest))
        padding = max(0, shape.record_size - length)
        payload["note"] = "".join(rng.choices(string.ascii_letters + " ", k=padding))
        pool.append(b"," + _dumps(payload)[1:])
    return pool


def _state_line(name: bytes, cursor: int, count: int) -> bytes:
    # A GLOBAL state (as a CDC source emits): its sourceStats count every record since the
    # previous state, over all streams, which is also what the destination counts for it.
    return b"".join(
        (
            b'{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"cursor":',
            str(cursor).encode(),
            b'},"stream_states":[{"stream_descriptor":{"name":"',
            name,
            b'"},"stream_state":{"cursor":',
            str(cursor).encode(),
            b'}}]},"sourceStats":{"recordCount":',
            str(float(count)).encode(),
            b"}}}\n",
        )
    )


def chunks(shape: StreamShape) -> Iterator[bytes]:
    """The message stream, as blocks of whole lines."""
    names = [name.encode() for name in stream_names(shape.streams)]
    pool = _payload_pool(shape)
    stream_count = len(names)
    state_every = shape.state_every
    since_state = 0
    lines: list[bytes] = []
    for index in range(shape.records):
        name = names[index % stream_count]
        emitted_at = BASE_EMITTED_AT_MS + index // RECORDS_PER_MS
        lines.append(_record_line(name, emitted_at, index, pool[index % POOL_SIZE]))
        since_state += 1
        if state_every > 0 and (since_state == state_every or index == shape.records - 1):
            lines.append(_state_line(name, index + 1, since_state))
            since_state = 0
        if len(lines) >= LINES_PER_CHUNK:
            yield b"".join(lines)
            lines = []
    if lines:
        yield b"".join(lines)


def write_stream(shape: StreamShape, out: BinaryIO) -> int:
    """Write the whole stream to `out`; returns the number of bytes written."""
    total = 0
    for block in chunks(shape):
        out.write(block)
        total += len(block)
    return total


def command_args(shape: StreamShape) -> list[str]:
    """Arguments of `python -m benchmarks.generate` that reproduce `shape`."""
    return [
        "--records",
        str(shape.records),
        "--streams",
        str(shape.streams),
        "--record-size",
        str(shape.record_size),
        "--state-every",
        str(shape.state_every),
        "--seed",
        str(shape.seed),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = StreamShape()
    parser.add_argument("--records", type=int, default=defaults.records)
    parser.add_argument("--streams", type=int, default=defaults.streams)
    parser.add_argument("--record-size", type=int, default=defaults.record_size)
    parser.add_argument("--state-every", type=int, default=defaults.state_every)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    shape = StreamShape(args.records, args.streams, args.record_size, args.state_every, args.seed)
    try:
        written = write_stream(shape, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # the connector stopped reading: it failed, and will say why
        sys.exit(1)
    summary = {**asdict(shape), "states": shape.states, "bytes": written}
    sys.stderr.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
