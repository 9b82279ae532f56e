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


def _append_catalog(generation: int, minimum: int) -> dict[str, object]:
    return configured_catalog(
        ["users"],
        destination_sync_mode="append",
        generation_id=generation,
        minimum_generation_id=minimum,
        sync_id=generation * 10 + minimum,
    )


def test_pyairbyte_append_keeps_objects_of_later_generations(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    # The reported data loss: an append sync of generation 5, then PyAirbyte's append, which
    # sends generation 1 / minimum 1 on every sync. Generation 5 >= 1: the protocol keeps it.
    config = make_config(bucket)
    run_write(config, _append_catalog(5, 0), [record("users", {"id": 5})]).assert_success()
    pyairbyte = run_write(config, _append_catalog(1, 1), [record("users", {"id": 1})])
    pyairbyte.assert_success()
    assert _user_ids(s3, bucket) == [1, 5]
    assert "removed" not in pyairbyte.log_text().lower()
    # Every object has its generation recorded, in every mode.
    markers = sorted(key.split("/")[2] for key in s3.list_keys(bucket, "_tarsal_generations/"))
    assert markers == ["1", "5"]


def test_pyairbyte_append_warns_before_removing_unrecorded_objects(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    # An object with no recorded generation (written by an older version, or copied in with our
    # naming) is removed by a truncating sync only, and an append-mode stream says so first.
    s3.put_object(bucket, "users/2020_01_01_1577836800000_0.jsonl", b'{"data":{"id":0}}\n')
    s3.put_object(bucket, "users/notes.jsonl", b"kept: not named like ours\n")
    run = run_write(make_config(bucket), _append_catalog(1, 1), [record("users", {"id": 1})])
    run.assert_success()
    assert s3.list_keys(bucket, "users/")[-1] == "users/notes.jsonl"
    assert _user_ids_of(s3, bucket, s3.list_keys(bucket, "users/")[:-1]) == [1]
    warnings = [str(log["message"]) for log in run.logs("WARN")]
    assert any(
        "removing 1 objects (1 with no recorded generation)" in message
        and f"s3://{bucket}/users/" in message
        and "minimum_generation_id == generation_id == 1" in message
        for message in warnings
    ), warnings


def test_markers_do_not_look_like_data_files(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    # pandas/polars over `**/*.csv` failed on 0-byte markers named `<…>.csv`.
    config = make_config(bucket, format={"format_type": "CSV", "flattening": "No flattening"})
    run_write(config, _append_catalog(2, 0), [record("users", {"id": 1})]).assert_success()
    keys = s3.list_keys(bucket)
    data = [key for key in keys if key.endswith(".csv")]
    assert len(data) == 1 and data[0].startswith("users/")
    markers = [key for key in keys if key.startswith("_tarsal_generations/")]
    assert len(markers) == 1 and markers[0].endswith(".csv.marker")


def test_markers_of_the_earlier_naming_are_still_honoured(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    # Markers written before `.marker` existed name the object itself: generation 4 >= 3 keeps it.
    name = "2020_01_01_1577836800000_0.jsonl"
    s3.put_object(bucket, f"users/{name}", b'{"data":{"id":4}}\n')
    s3.put_object(bucket, f"_tarsal_generations/users/4/{name}", b"")
    run = run_write(make_config(bucket), _overwrite_catalog(3), [record("users", {"id": 3})])
    run.assert_success()
    assert _user_ids(s3, bucket) == [3, 4]


def _user_ids_of(s3: MotoServer, bucket: str, keys: list[str]) -> list[int]:
    return sorted(line["data"]["id"] for key in keys for line in s3.read_jsonl(bucket, key))
