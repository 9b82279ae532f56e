"""The block-at-a-time write path writes exactly the bytes the per-record encoders give, record
by record, on the benchmark's corpus (nested objects, unicode, strings CSV must quote): only the
generated `_tarsal_ab_id`s differ, so they are masked."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest

from benchmarks.generate import JSON_SCHEMA, StreamShape, chunks, configured_catalog
from destination_s3.catalog import catalog_of
from destination_s3.config import parse_config
from destination_s3.encoders import encoder_for, root_level_properties
from destination_s3.messages import decode, record_data
from destination_s3.storage import Bucket
from destination_s3.sync import Sync
from destination_s3.tuning import Tuning
from unit_tests.fake_s3 import FakeS3Client

RAW_CONFIG = {"s3_bucket_name": "bucket", "credentials": {"auth_type": "default_chain"}}
SHAPE = StreamShape(records=12_000, streams=3, record_size=400, state_every=1_000)
MASKED_ID = b"00000000-0000-4000-8000-000000000000"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

FORMATS = {
    "jsonl": {"format_type": "JSONL"},
    "csv": {"format_type": "CSV", "flattening": "No flattening"},
    "csv_root": {"format_type": "CSV", "flattening": "Root-level flattening"},
}


def _written(format: dict[str, str]) -> dict[str, bytes]:
    fake = FakeS3Client()
    catalog = catalog_of(configured_catalog([f"stream_{n:03d}" for n in range(SHAPE.streams)]))
    config = parse_config({**RAW_CONFIG, "format": format})
    sync = Sync(config, catalog, Bucket(cast(Any, fake), "bucket"), Tuning(upload_workers=2))
    states = list(sync.run(chunks(SHAPE)))
    assert len(states) == SHAPE.states
    bodies: dict[str, bytes] = {}
    for key in sorted(fake.objects):
        if not key.startswith("_tarsal_"):
            stream = key.split("/")[0]
            bodies[stream] = bodies.get(stream, b"") + fake.objects[key].body
    return bodies


def _expected(format: dict[str, str]) -> dict[str, bytes]:
    """Each record encoded on its own, as the per-line path did."""
    output_format = parse_config({**RAW_CONFIG, "format": format}).output_format
    encoders: dict[str, Any] = {}
    bodies: dict[str, list[bytes]] = {}
    for number, line in enumerate(b"".join(chunks(SHAPE)).splitlines(), start=1):
        record = decode(line, number).record
        if record is None:
            continue
        if record.stream not in encoders:
            header, encoders[record.stream] = encoder_for(
                output_format, root_level_properties(JSON_SCHEMA)
            )
            bodies[record.stream] = [header]
        data, _ = record_data(record, number, line)
        encode = encoders[record.stream]
        emitted_at = str(int(record.emitted_at)).encode()
        bodies[record.stream].append(
            encode(b"00000000-0000-4000-8000-000000000000", emitted_at, data)
        )
    return {stream: b"".join(parts) for stream, parts in bodies.items()}


@pytest.mark.parametrize("name", FORMATS)
def test_block_path_output_equals_per_record_encoding(name: str) -> None:
    written, expected = _written(FORMATS[name]), _expected(FORMATS[name])
    assert sorted(written) == sorted(expected)
    for stream, body in written.items():
        masked = UUID.sub(MASKED_ID, body)
        assert masked == expected[stream], stream
        assert len(UUID.findall(body)) == len(set(UUID.findall(body))) == SHAPE.records // 3
