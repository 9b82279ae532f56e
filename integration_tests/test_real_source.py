"""A real Airbyte source (PyPI `airbyte-source-faker`) piped into `main.py write`, into moto.

The pipeline is demo/run_demo.py's (`source-faker read | tee | python main.py write`, OS pipes);
this test asserts on it independently of the demo's own verdict: every record the source emitted
is in S3 exactly once with the same data, and every state the source emitted came back, in order,
unchanged but for `destinationStats`.

The source runs from its own virtualenv, `.demo/source-venv` (git-ignored), created on first use
with `pip install airbyte-source-faker` (about a minute) and reused afterwards.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from demo import run_demo
from integration_tests.s3_server import MotoServer

pytestmark = pytest.mark.slow

COUNT = 300  # users and purchases; products are always 100
RECORDS_PER_SLICE = 50  # a state every 50 records: 13 states for 700 records
SAMPLE_SIZE = 25


@pytest.fixture(scope="module")
def source_faker() -> Path:
    """The `source-faker` script of `.demo/source-venv` (installed on first use)."""
    script: Path = run_demo.ensure_source_venv()
    return script


@pytest.fixture
def synced(s3: MotoServer, bucket: str, source_faker: Path, tmp_path: Path) -> run_demo.SyncReport:
    return run_demo.compare(
        *run_demo.run_faker_pipeline(
            s3,
            bucket,
            COUNT,
            tmp_path,
            records_per_slice=RECORDS_PER_SLICE,
            source=source_faker,
        )
    )


def test_every_record_and_state_of_a_real_source_arrives(
    synced: run_demo.SyncReport, s3: MotoServer, bucket: str
) -> None:
    report = synced
    run = report.run
    assert run.source_exit == 0, run.source_stderr[-3000:]
    assert run.destination_exit == 0, (
        run.destination_stderr[-3000:] + json.dumps(run.emitted)[-3000:]
    )

    # The source really produced the configured amount of data, in every stream it offers.
    source_records = report.source_records
    assert set(source_records) == {"users", "purchases", "products"}
    assert len(source_records["users"]) == COUNT
    assert len(source_records["products"]) == 100
    assert len(source_records["purchases"]) > 0

    # Objects: only the demo's layout, no leftover multipart uploads.
    pattern = re.compile(r"faker/(users|purchases|products)/\d{4}_\d{2}_\d{2}_\d{13}_0\.jsonl")
    assert report.objects, "nothing was written"
    assert all(pattern.fullmatch(key) for key in report.objects), list(report.objects)
    assert s3.data_keys(bucket) == list(report.objects)
    assert s3.list_multipart_uploads(bucket) == []

    # Records: the same count per stream, and the same multiset of `data` objects.
    for stream, records in source_records.items():
        lines = report.s3_lines[stream]
        assert len(lines) == len(records), stream
        canonical = run_demo._canonical
        assert Counter(canonical(line["data"]) for line in lines) == Counter(
            canonical(record["data"]) for record in records
        ), stream

    # A sample compared field by field through the primary key, with the record's metadata.
    rng = random.Random(7)
    for stream, records in source_records.items():
        by_id = {line["data"]["id"]: line for line in report.s3_lines[stream]}
        assert len(by_id) == len(records), f"{stream}: duplicate ids in S3"
        for record in [records[0], records[-1], *rng.sample(records, SAMPLE_SIZE)]:
            stored = by_id[record["data"]["id"]]
            assert stored["data"] == record["data"]
            metadata = stored["_tarsal_metadata"]
            assert metadata["_tarsal_emitted_at"] == str(record["emitted_at"])
            assert re.fullmatch(r"[0-9a-f-]{36}", metadata["_tarsal_ab_id"])
    ab_ids = [
        line["_tarsal_metadata"]["_tarsal_ab_id"]
        for lines in report.s3_lines.values()
        for line in lines
    ]
    assert len(set(ab_ids)) == len(ab_ids)

    # States: every one came back, in order, unchanged but for destinationStats.
    assert len(report.source_states) >= 2 * COUNT // RECORDS_PER_SLICE
    assert len(report.destination_states) == len(report.source_states)
    for sent, returned in zip(report.source_states, report.destination_states, strict=True):
        assert run_demo.without_destination_stats(returned) == sent
        assert returned.get("sourceStats") == sent.get("sourceStats")
    counts = [state["destinationStats"]["recordCount"] for state in report.destination_states]
    assert counts == [float(n) for n in report.records_before_state]
    assert sum(counts) == sum(len(records) for records in source_records.values())
    # The platform's own check: where the source counted, the destination agrees.
    counted_by_source = [s for s in report.destination_states if "sourceStats" in s]
    assert counted_by_source
    for state in counted_by_source:
        assert state["destinationStats"]["recordCount"] == state["sourceStats"]["recordCount"]

    # The destination printed protocol messages only, and no error.
    assert not [m for m in run.emitted if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    assert report.problems == []


def test_a_real_source_into_parquet_with_hive_partitions(
    s3: MotoServer, bucket: str, source_faker: Path, tmp_path: Path
) -> None:
    # The faker source's own catalog (integers, numbers, date-time strings, objects) typed into
    # Parquet columns, below a Hive-partitioned template: every record once, none a misfit.
    template = "${STREAM_NAME}/dt=${YEAR}-${MONTH}-${DAY}"
    run, objects = run_demo.run_faker_pipeline(
        s3,
        bucket,
        COUNT,
        tmp_path / "sync",
        records_per_slice=RECORDS_PER_SLICE,
        source=source_faker,
        config_overrides={"format": {"format_type": "Parquet"}, "s3_path_format": template},
    )
    assert (run.source_exit, run.destination_exit) == (0, 0), run.destination_stderr[-3000:]
    sent: dict[str, list[Any]] = {}
    for message in run.received:
        if message["type"] == "RECORD":
            sent.setdefault(message["record"]["stream"], []).append(message["record"]["data"]["id"])
    states = [message for message in run.emitted if message["type"] == "STATE"]
    assert len(states) == sum(message["type"] == "STATE" for message in run.received)

    landed: dict[str, list[Any]] = {}
    for key, body in objects.items():
        match = re.fullmatch(r"[^/]+/(\w+)/dt=\d{4}-\d\d-\d\d/\d{4}_\d\d_\d\d_\d+_0\.parquet", key)
        assert match, key
        path = tmp_path / key.replace("/", "_")
        path.write_bytes(body)
        table = pq.read_table(path)
        assert table.column("_tarsal_meta").null_count == table.num_rows  # no misfit
        assert str(table.schema.field("id").type) == "int64"
        landed.setdefault(match[1], []).extend(table.column("id").to_pylist())
    assert {stream: sorted(ids) for stream, ids in landed.items()} == {
        stream: sorted(ids) for stream, ids in sent.items()
    }
