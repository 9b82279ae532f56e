"""Overwrite across attempts and generations: what a retried attempt committed is never lost."""

from __future__ import annotations

from integration_tests.connector import (
    MakeConfig,
    configured_catalog,
    record,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.s3_server import MotoServer


def _overwrite_catalog(generation: int) -> dict[str, object]:
    return configured_catalog(
        ["users"],
        destination_sync_mode="overwrite",
        generation_id=generation,
        minimum_generation_id=generation,
        sync_id=generation * 10,
    )


def _user_ids(s3: MotoServer, bucket: str) -> list[int]:
    ids = []
    for key in s3.list_keys(bucket, "users/"):
        ids.extend(line["data"]["id"] for line in s3.read_jsonl(bucket, key))
    return sorted(ids)


def test_failed_attempt_keeps_committed_files_for_the_retry(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket)
    # An older generation's data, which the truncate must remove.
    old = run_write(config, _overwrite_catalog(1), [record("users", {"id": 0})])
    old.assert_success()

    # Attempt 1 of generation 2 commits id 1 (its state is released), then dies on a bad line.
    with start_write(
        make_config(bucket, flush_interval_seconds=1), _overwrite_catalog(2)
    ) as attempt_1:
        attempt_1.send(record("users", {"id": 1}))
        attempt_1.send(stream_state("users", {"cursor": 1}))
        attempt_1.wait_for_type("STATE", timeout=30)
        attempt_1.send("not json")
        failed = attempt_1.finish()
    assert failed.returncode != 0
    assert failed.trace_errors()
    assert _user_ids(s3, bucket) == [0, 1]  # a failed sync deletes nothing

    # Attempt 2 resumes after the released state: id 1 is not resent and must survive.
    attempt_2 = run_write(
        config,
        _overwrite_catalog(2),
        [record("users", {"id": 2}), stream_state("users", {"cursor": 2})],
    )
    attempt_2.assert_success()
    assert _user_ids(s3, bucket) == [1, 2]

    # The next generation replaces both attempts' data and the old markers.
    third = run_write(config, _overwrite_catalog(3), [record("users", {"id": 3})])
    third.assert_success()
    assert _user_ids(s3, bucket) == [3]
    markers = s3.list_keys(bucket, "_tarsal_generations/users/")
    assert markers and all(key.startswith("_tarsal_generations/users/3/") for key in markers)


def test_overwrite_without_generation_keeps_only_this_attempt(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket)
    catalog = configured_catalog(["users"], destination_sync_mode="overwrite")
    run_write(config, catalog, [record("users", {"id": 1})]).assert_success()
    run_write(config, catalog, [record("users", {"id": 2})]).assert_success()
    assert _user_ids(s3, bucket) == [2]
    assert s3.list_keys(bucket, "_tarsal_generations/") == []
