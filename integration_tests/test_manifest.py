"""The per-sync manifest, through the CLI against the local S3 server: written last by a
successful sync only, and listing exactly what the bucket holds for it."""

from __future__ import annotations

import json
from typing import Any

from integration_tests.connector import (
    MakeConfig,
    configured_catalog,
    record,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.s3_server import MotoServer


def _manifests(s3: MotoServer, bucket: str) -> list[dict[str, Any]]:
    keys = s3.list_keys(bucket, "data/_tarsal_manifests/")
    return [json.loads(s3.read_object(bucket, key)) for key in keys]


def test_the_manifest_lists_what_the_bucket_holds(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    catalog = configured_catalog(
        ["users", "orders"], generation_id=4, minimum_generation_id=0, sync_id=77
    )
    messages = [
        record("users", {"id": 1}, emitted_at=1_700_000_000_001),
        record("orders", {"id": 2}, emitted_at=1_700_000_000_002),
        record("users", {"id": 3}, emitted_at=1_700_000_000_003),
        stream_state("users", {"cursor": 3}),
    ]
    run = run_write(make_config(bucket, "data"), catalog, messages)
    run.assert_success()
    [manifest] = _manifests(s3, bucket)
    [key] = s3.list_keys(bucket, "data/_tarsal_manifests/")
    assert key.endswith("_77.json") and "Manifest: s3://" in run.log_text()
    assert (manifest["sync_id"], manifest["catalog_sync_id"]) == ("77", 77)
    assert manifest["states_released"] == 1
    assert manifest["last_state"]["stream"]["stream_state"] == {"cursor": 3}
    listed = {obj["Key"]: obj for obj in s3.list_objects(bucket, "data/")}
    by_name = {stream["name"]: stream for stream in manifest["streams"]}
    assert set(by_name) == {"users", "orders"}
    assert (by_name["users"]["records"], by_name["orders"]["records"]) == (2, 1)
    assert by_name["users"]["stream_states_released"] == 1
    for stream in by_name.values():
        assert stream["generation_id"] == 4 and stream["complete_file_set"] is False
        for obj in stream["objects"]:
            stored = listed[obj["key"]]  # every object listed exists, as described
            assert obj["stored_bytes"] == stored["Size"] == obj["bytes"]
            assert obj["etag"] == stored["ETag"].strip('"')
            lines = s3.read_jsonl(bucket, obj["key"])
            assert obj["records"] == len(lines)
            emitted = [int(line["_tarsal_metadata"]["_tarsal_emitted_at"]) for line in lines]
            assert (obj["first_emitted_at"], obj["last_emitted_at"]) == (emitted[0], emitted[-1])
    # Every data object of the sync is in the manifest.
    data = {k for k in listed if not k.startswith("data/_tarsal_")}
    assert data == {obj["key"] for s in by_name.values() for obj in s["objects"]}


def test_an_overwrite_lists_its_complete_current_file_set(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, "data", flush_interval_seconds=1)
    catalog = configured_catalog(
        ["users"], destination_sync_mode="overwrite", generation_id=2, minimum_generation_id=2
    )
    old = configured_catalog(["users"], destination_sync_mode="overwrite", generation_id=1)
    run_write(config, old, [record("users", {"id": 0})]).assert_success()
    # Attempt 1 of generation 2 commits one object, then fails: no manifest from it.
    with start_write(config, catalog) as attempt:
        attempt.send(record("users", {"id": 1}))
        attempt.send(stream_state("users", {"cursor": 1}))
        attempt.wait_for_type("STATE", timeout=30)
        attempt.send("not json")
        assert attempt.finish().returncode == 1
    assert len(_manifests(s3, bucket)) == 1  # the generation-1 sync's only
    run_write(config, catalog, [record("users", {"id": 2})]).assert_success()
    latest = max(_manifests(s3, bucket), key=lambda manifest: manifest["started_at"])
    [users] = latest["streams"]
    assert users["complete_file_set"] is True
    objects = users["objects"]
    assert [obj["written_by_this_sync"] for obj in objects] == [False, True]
    ids = sorted(
        line["data"]["id"] for obj in objects for line in s3.read_jsonl(bucket, obj["key"])
    )
    assert ids == [1, 2]  # exactly the current generation: attempt 1's and this sync's
    current = {k for k in s3.list_keys(bucket, "data/users/")}
    assert current == {obj["key"] for obj in objects}


def test_no_manifest_when_turned_off(s3: MotoServer, bucket: str, make_config: MakeConfig) -> None:
    config = make_config(bucket, "data", write_manifest=False)
    run_write(config, configured_catalog(["users"]), [record("users", {"id": 1})]).assert_success()
    assert _manifests(s3, bucket) == []
