"""Sync modes: append adds files; overwrite and truncate refresh remove only the stream's own
earlier objects, only after the new data is committed, and never when the sync fails."""

from __future__ import annotations

import json

from integration_tests.connector import (
    MakeConfig,
    Message,
    StdinLine,
    access_key_credentials,
    configured_catalog,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.readback import (
    FIXED_EMITTED_AT,
    assert_failed_with,
    assert_same_records,
    datas,
    direct_keys,
    jsonl_data_under,
    numbered_records,
    read_jsonl,
    run_concurrently,
    with_destination_count,
)
from integration_tests.s3_server import MotoServer, seed_policy

# Objects an earlier sync left behind (named the way the connector names its objects).
EARLIER_USERS = "users/2024_01_01_1704067200000_0.jsonl"
EARLIER_USERS_CSV = "users/2024_01_01_1704067200001_0.csv"  # from when the format was CSV
SIBLING = "users_archive/2024_01_01_1704067200000_0.jsonl"  # shares the "users" prefix
SUB_DIRECTORY = "users/sub/2024_01_01_1704067200000_0.jsonl"  # not the stream's own objects
EARLIER_ORDERS = "orders/2024_01_01_1704067200000_0.jsonl"


def earlier_body(marker: str) -> bytes:
    envelope = {
        "_tarsal_metadata": {
            "_tarsal_ab_id": "0a61de1b-9cdd-4455-a739-93572c9a5f20",
            "_tarsal_emitted_at": str(FIXED_EMITTED_AT),
        },
        "data": {"earlier": marker},
    }
    return (json.dumps(envelope) + "\n").encode()


def seed_earlier_objects(s3: MotoServer, bucket: str, path: str = "") -> dict[str, bytes]:
    """Put the earlier sync's objects (under ``path``); returns key -> body."""
    prefix = f"{path}/" if path else ""
    seeded = {}
    for key in (EARLIER_USERS, EARLIER_USERS_CSV, SIBLING, SUB_DIRECTORY, EARLIER_ORDERS):
        body = earlier_body(key)
        s3.put_object(bucket, prefix + key, body)
        seeded[prefix + key] = body
    return seeded


def assert_untouched(s3: MotoServer, bucket: str, seeded: dict[str, bytes]) -> None:
    for key, body in seeded.items():
        assert key in s3.list_keys(bucket, key), f"{key} was deleted"
        assert s3.read_object(bucket, key) == body, f"{key} was changed"


def is_state(message: Message) -> bool:
    return message.get("type") == "STATE"


def test_append_adds_files_alongside_earlier_ones(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    seeded = seed_earlier_objects(s3, bucket)
    config = make_config(bucket)
    catalog = configured_catalog(["users"], destination_sync_mode="append")
    first = numbered_records("users", 3)
    second = numbered_records("users", 2, start=3)

    run_write(config, catalog, first).assert_success()
    after_first = {key: s3.read_object(bucket, key) for key in direct_keys(s3, bucket, "users/")}
    run_write(config, catalog, second).assert_success()

    after_second = direct_keys(s3, bucket, "users/")
    assert len(after_second) > len(after_first)
    for key, body in after_first.items():
        assert key in after_second
        assert s3.read_object(bucket, key) == body
    assert_untouched(s3, bucket, seeded)
    new_keys = [key for key in after_second if key not in seeded]
    assert_same_records(
        [envelope["data"] for envelope in read_jsonl(s3, bucket, new_keys)],
        datas(first + second),
    )


def test_overwrite_removes_only_the_streams_earlier_objects_after_the_sync_commits(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    seeded = seed_earlier_objects(s3, bucket, "out")
    # moto 5.2 authorises DeleteObjects as s3:DeleteObject on the BUCKET's ARN (AWS checks each
    # object's ARN), so seed_policy_with_delete alone is not enough here: grant it on both.
    user = s3.create_user_with_policy(
        "writer",
        seed_policy(
            bucket,
            extra_object_actions=["s3:DeleteObject"],
            extra_bucket_actions=["s3:DeleteObject"],
        ),
    )
    s3.enforce_iam(True)
    config = make_config(
        bucket,
        "out",
        credentials=access_key_credentials(user.access_key_id, user.secret_access_key),
        flush_interval_seconds=1,
    )
    catalog = configured_catalog(
        [
            {"name": "users", "destination_sync_mode": "overwrite"},
            {"name": "orders", "destination_sync_mode": "append"},
        ]
    )
    users = numbered_records("users", 3)
    orders = numbered_records("orders", 2)
    state = stream_state("users", {"cursor": 3})
    with start_write(config, catalog) as process:
        process.send_many([*users, *orders, state])
        printed = process.wait_for(is_state, timeout=15)
        assert printed["state"] == with_destination_count(state, 3)  # the users records
        # This sync's data is committed, but the sync is not over: nothing deleted yet.
        assert_untouched(s3, bucket, seeded)
        more_users = numbered_records("users", 2, start=3)
        process.send_many(more_users)
        run = process.finish(timeout=60)
    run.assert_success()

    users_keys = direct_keys(s3, bucket, "out/users/")
    assert f"out/{EARLIER_USERS}" not in users_keys
    assert f"out/{EARLIER_USERS_CSV}" not in users_keys
    assert_same_records(
        jsonl_data_under(s3, bucket, "out/users/"),
        [*datas(users + more_users), {"earlier": SUB_DIRECTORY}],
    )
    untouched = {key: body for key, body in seeded.items() if "/users/2024" not in key}
    assert set(untouched) == {f"out/{SIBLING}", f"out/{SUB_DIRECTORY}", f"out/{EARLIER_ORDERS}"}
    assert_untouched(s3, bucket, untouched)
    assert_same_records(
        jsonl_data_under(s3, bucket, "out/orders/"), [*datas(orders), {"earlier": EARLIER_ORDERS}]
    )


def test_failing_overwrite_sync_deletes_nothing(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    seeded = seed_earlier_objects(s3, bucket)
    catalog = configured_catalog(["users", "orders"], destination_sync_mode="overwrite")
    lines: list[StdinLine] = [
        *numbered_records("users", 2),
        stream_state("users", {"cursor": 2}),
        *numbered_records("orders", 2),
        "this line is not an Airbyte message",
        *numbered_records("users", 2, start=2),
    ]
    run = run_write(make_config(bucket), catalog, lines)
    assert_failed_with(run, "system_error", "line 6")
    assert_untouched(s3, bucket, seeded)


def test_truncate_refresh_behaves_like_overwrite_and_a_plain_append_keeps_earlier_objects(
    s3: MotoServer, make_config: MakeConfig
) -> None:
    refresh_bucket = s3.create_bucket("it-truncate-refresh")
    append_bucket = s3.create_bucket("it-append-generation")
    seeded = {name: seed_earlier_objects(s3, name) for name in (refresh_bucket, append_bucket)}
    users = numbered_records("users", 3)
    refresh = configured_catalog(
        ["users"], destination_sync_mode="append", generation_id=3, minimum_generation_id=3
    )
    keep = configured_catalog(
        ["users"], destination_sync_mode="append", generation_id=3, minimum_generation_id=0
    )
    refresh_config, keep_config = make_config(refresh_bucket), make_config(append_bucket)
    runs = run_concurrently(
        lambda: run_write(refresh_config, refresh, users),
        lambda: run_write(keep_config, keep, users),
    )
    for run in runs:
        run.assert_success()

    refreshed = direct_keys(s3, refresh_bucket, "users/")
    assert EARLIER_USERS not in refreshed
    assert EARLIER_USERS_CSV not in refreshed
    assert_same_records(
        jsonl_data_under(s3, refresh_bucket, "users/"),
        [*datas(users), {"earlier": SUB_DIRECTORY}],
    )
    assert_untouched(
        s3,
        refresh_bucket,
        {k: v for k, v in seeded[refresh_bucket].items() if not k.startswith("users/2024")},
    )
    assert_untouched(s3, append_bucket, seeded[append_bucket])
    assert_same_records(
        jsonl_data_under(s3, append_bucket, "users/"),
        [*datas(users), {"earlier": EARLIER_USERS}, {"earlier": SUB_DIRECTORY}],
    )


def test_overwrite_without_delete_permission_fails_naming_it_and_keeps_the_new_data(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    seeded = seed_earlier_objects(s3, bucket)
    user = s3.create_user_with_policy("no-delete", seed_policy(bucket))
    s3.enforce_iam(True)
    config = make_config(
        bucket, credentials=access_key_credentials(user.access_key_id, user.secret_access_key)
    )
    users = numbered_records("users", 2)
    catalog = configured_catalog(["users"], destination_sync_mode="overwrite")

    run = run_write(config, catalog, [*users, stream_state("users", {"cursor": 2})])

    assert_failed_with(run, "config_error", "s3:DeleteObject")
    assert_untouched(s3, bucket, seeded)
    new_keys = [key for key in direct_keys(s3, bucket, "users/") if key not in seeded]
    assert new_keys, "the new data is gone"
    assert_same_records(
        [envelope["data"] for envelope in read_jsonl(s3, bucket, new_keys)],
        datas(users),
    )
