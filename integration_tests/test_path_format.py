"""`s3_path_format`: object keys from a path template, written by the connector (a subprocess):
Hive partitions from the object's open time, ${SYNC_ID} and ${UUID}, overwrite below the stream's
root only (siblings, other files and other layouts stay), templates refused by check and write
with a config_error naming the problem, and two streams that would share a root."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from integration_tests.connector import (
    MakeConfig,
    configured_catalog,
    now_ms,
    record,
    run_check,
    run_write,
    stream_state,
)
from integration_tests.readback import assert_failed_with, parse_key, read_jsonl
from integration_tests.s3_server import MotoServer

HIVE = "${NAMESPACE}/${STREAM_NAME}/dt=${YEAR}-${MONTH}-${DAY}/hour=${HOUR}"


def hive_folder(epoch_ms: int) -> str:
    at = dt.datetime.fromtimestamp(epoch_ms / 1000, dt.timezone.utc)
    return at.strftime("dt=%Y-%m-%d/hour=%H")


def users(count: int, namespace: str | None = None, stream: str = "users") -> list[Any]:
    return [record(stream, {"id": n}, namespace=namespace) for n in range(count)]


def test_hive_partitions_come_from_each_object_open_time(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, s3_bucket_path="lake", s3_path_format=HIVE)
    catalog = configured_catalog(["users"], namespace="crm")
    started = now_ms()
    run = run_write(config, catalog, [*users(5, "crm"), stream_state("users", {"n": 5}, "crm")])
    run.assert_success()
    assert len(run.states()) == 1
    assert f"path_format={HIVE}" in run.log_text()

    (key,) = s3.data_keys(bucket)
    parsed = parse_key(key)
    assert started <= parsed.epoch_ms <= now_ms()
    assert parsed.directory == f"lake/crm/users/{hive_folder(parsed.epoch_ms)}/"
    assert [line["data"] for line in read_jsonl(s3, bucket, [key])] == [{"id": n} for n in range(5)]


def test_sync_id_and_uuid_variables(s3: MotoServer, bucket: str, make_config: MakeConfig) -> None:
    config = make_config(bucket, s3_path_format="${STREAM_NAME}/sync=${SYNC_ID}/${UUID}")
    run_write(config, configured_catalog(["users"], sync_id=4242), users(3)).assert_success()
    (key,) = s3.data_keys(bucket)
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(rf"users/sync=4242/{uuid}/\d{{4}}_\d\d_\d\d_\d+_0\.jsonl", key), key


def test_overwrite_removes_only_its_own_objects_below_its_root(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, s3_path_format=HIVE)
    # Written earlier: our object of another day (no marker: removed by a truncating sync), a
    # file someone else put in a partition, a sibling stream's object, a namespaced stream whose
    # namespace is this stream's name, and an object of the default layout (not this layout's).
    earlier = {
        "users/dt=2020-01-01/hour=00/2020_01_01_1577836800000_0.jsonl": True,
        "users/dt=2020-01-01/hour=00/notes.txt": False,
        "users_archive/dt=2020-01-01/hour=00/2020_01_01_1577836800000_0.jsonl": False,
        "users/orders/dt=2020-01-01/hour=00/2020_01_01_1577836800000_0.jsonl": False,
        "users/2020_01_01_1577836800000_0.jsonl": False,
    }
    client = s3.admin_client("s3")
    for key in earlier:
        client.put_object(Bucket=bucket, Key=key, Body=b'{"earlier":true}\n')

    catalog = configured_catalog(["users"], destination_sync_mode="overwrite")
    run_write(config, catalog, users(2)).assert_success()

    keys = set(s3.data_keys(bucket))
    assert keys >= {key for key, removed in earlier.items() if not removed}
    assert not keys & {key for key, removed in earlier.items() if removed}
    (written,) = keys - set(earlier)
    assert parse_key(written).directory.startswith("users/dt=")


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("${NAMESPACE}", "it has no ${STREAM_NAME}: two streams would share objects"),
        ("${YEAR}/${STREAM_NAME}", "${YEAR} is in or before the folder holding ${STREAM_NAME}"),
        ("${STREAM_NAME}/${DATE}", "unknown variable ${DATE}"),
        ("${STREAM_NAME}/../up", "a folder named `..` is not allowed"),
    ],
)
def test_check_and_write_refuse_a_bad_template(
    s3: MotoServer, bucket: str, make_config: MakeConfig, template: str, fragment: str
) -> None:
    config = make_config(bucket, s3_path_format=template)
    status = run_check(config).connection_status()
    assert status is not None and status["status"] == "FAILED"
    assert fragment in status["message"]
    run = run_write(config, configured_catalog(["users"]), users(1))
    assert_failed_with(run, "config_error", fragment)
    assert s3.data_keys(bucket) == []


def test_two_streams_sharing_a_root_are_refused_before_anything_is_written(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    # Without ${NAMESPACE} in the template, crm.users and erp.users would share users/.
    config = make_config(bucket, s3_path_format="${STREAM_NAME}/dt=${YEAR}")
    catalog = configured_catalog(
        [{"name": "users", "namespace": "crm"}, {"name": "users", "namespace": "erp"}]
    )
    run = run_write(config, catalog, users(1, "crm"))
    assert_failed_with(run, "config_error", "Streams 'crm.users' and 'erp.users'", "users/")
    assert s3.data_keys(bucket) == []


def test_generations_are_recorded_and_applied_with_a_template(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, s3_path_format=HIVE)

    def refresh(generation: int) -> str:
        catalog = configured_catalog(
            ["users"],
            destination_sync_mode="overwrite",
            generation_id=generation,
            minimum_generation_id=generation,
        )
        run_write(config, catalog, users(2)).assert_success()
        (key,) = s3.data_keys(bucket)
        return key

    first = refresh(1)
    # The marker names the object by its key below the stream's root, as one segment.
    relative = first.removeprefix("users/").replace("/", "%2F")
    assert s3.list_keys(bucket, "_tarsal_generations/") == [
        f"_tarsal_generations/users/1/{relative}.marker"
    ]
    second = refresh(2)
    assert second != first  # the first generation's object and its marker are gone
    (marker,) = s3.list_keys(bucket, "_tarsal_generations/")
    relative = second.removeprefix("users/").replace("/", "%2F")
    assert marker == f"_tarsal_generations/users/2/{relative}.marker"
