"""STATE handling: every state comes out once, in order, unchanged but for
destinationStats.recordCount, and only once every record before it is in a completed object."""

from __future__ import annotations

from typing import Any

import pytest

from integration_tests.connector import (
    MakeConfig,
    Message,
    configured_catalog,
    global_state,
    legacy_state,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.readback import (
    assert_clean_stdout,
    assert_same_records,
    assert_states,
    datas,
    direct_keys,
    jsonl_data_under,
    messages_within,
    numbered_records,
    wait_until,
    with_destination_count,
)
from integration_tests.s3_server import MotoServer

CATALOG = configured_catalog(["users", "orders"])


def is_state(message: Message) -> bool:
    return message.get("type") == "STATE"


def five_states(kind: str) -> list[Message]:
    """Five distinct states of one kind; the last one arrives with a stale destinationStats."""
    if kind == "STREAM":
        states = [
            stream_state("users", {"cursor": 0}, record_count=0),
            stream_state(
                "users", {"cursor": "2024-01-01", "nested": {"ü": [1, None]}}, record_count=1
            ),
            stream_state("orders", {"cursor": 10}, record_count=1),
            stream_state("orders", {"cursor": 10}),
            stream_state("users", {"cursor": 4}, record_count=3),
        ]
    elif kind == "GLOBAL":
        states = [
            global_state({"lsn": lsn}, {"users": {"u": lsn}, ("orders", None): {"o": lsn}})
            for lsn in range(5)
        ]
    else:
        states = [
            legacy_state({"users": {"cursor": 0}}),
            legacy_state({"users": {"cursor": 2}, "orders": {"cursor": 1}}, explicit_type=True),
            legacy_state({"orders": {"cursor": 10}}),
            legacy_state({"orders": {"cursor": 10}}, explicit_type=True),
            legacy_state({"users": {"cursor": 4}}),
        ]
    states[4]["state"]["destinationStats"] = {"recordCount": 999.0}
    return states


@pytest.mark.parametrize("kind", ["STREAM", "GLOBAL", "LEGACY"])
def test_states_come_out_in_order_once_with_destination_record_counts(
    kind: str, s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    users = numbered_records("users", 4)
    orders = numbered_records("orders", 2)
    s0, s1, s2, s3_, s4 = five_states(kind)
    lines = [s0, users[0], orders[0], s1, users[1], s2, s3_, users[2], users[3], orders[1], s4]

    run = run_write(make_config(bucket), CATALOG, lines).assert_success()

    # A STREAM state counts its own stream's records since that stream's previous state (as the
    # platform checks it); GLOBAL and LEGACY states count every record since the previous state.
    counts = [0, 1, 1, 0, 3] if kind == "STREAM" else [0, 2, 1, 0, 3]
    assert_clean_stdout(run)
    assert_states(
        run,
        [
            with_destination_count(state, count)
            for state, count in zip([s0, s1, s2, s3_, s4], counts, strict=True)
        ],
    )
    assert_same_records(jsonl_data_under(s3, bucket, ""), datas(users + orders))


def test_sync_with_only_states_emits_them_and_writes_no_object(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    states = [stream_state("users", {"cursor": 1}), stream_state("orders", {"cursor": 2})]
    run = run_write(make_config(bucket), CATALOG, states).assert_success()
    assert_states(run, [with_destination_count(state, 0) for state in states])
    assert s3.data_keys(bucket) == []
    [manifest] = s3.list_keys(bucket)  # the sync completed: its manifest says so
    assert manifest.startswith("_tarsal_manifests/")


def test_state_is_held_while_its_records_are_in_an_open_object(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, flush_interval_seconds=3600)
    users = numbered_records("users", 3)
    state = stream_state("users", {"cursor": 3})
    with start_write(config, CATALOG) as process:
        process.send_many([*users, state])
        # The start-of-sync LOG means it is reading stdin; then give it 2 s to (wrongly) flush.
        seen = [process.wait_for_type("LOG", timeout=30)]
        seen += messages_within(process, 2.0)
        assert not [m for m in seen if is_state(m)], "a STATE came out before its records"
        assert s3.list_keys(bucket) == [], "an object was completed before the flush"
        assert process.process.poll() is None, "the connector stopped with stdin still open"
        run = process.finish(timeout=60)

    run.assert_success()
    assert_states(run, [with_destination_count(state, 3)])
    assert_same_records(jsonl_data_under(s3, bucket, ""), datas(users))


def test_flush_interval_releases_a_state_with_every_earlier_record_readable(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, flush_interval_seconds=1)
    first = [*numbered_records("users", 3), *numbered_records("orders", 2)]
    second = [*numbered_records("users", 2, start=3), *numbered_records("orders", 1, start=2)]
    state_one = stream_state("users", {"cursor": 3})
    state_two = global_state({"lsn": 2})  # any kind: the ledger treats them alike
    sent: list[Any] = []
    # recordCount: the users records for the STREAM state, every record for the GLOBAL one.
    expected_counts = {id(state_one): 3, id(state_two): len(second)}
    with start_write(config, CATALOG) as process:
        for batch, state in ((first, state_one), (second, state_two)):
            process.send_many([*batch, state])
            sent += batch
            printed = process.wait_for(is_state, timeout=15)
            # Read back right away: everything before the state must already be in S3.
            readable = jsonl_data_under(s3, bucket, "")
            assert printed["state"] == with_destination_count(state, expected_counts[id(state)])
            missing = [d for d in datas(sent) if d not in readable]
            assert not missing, f"STATE printed before these records were readable: {missing}"
        run = process.finish(timeout=60)

    run.assert_success()
    assert_states(run, [with_destination_count(state_one, 3), with_destination_count(state_two, 3)])
    assert_same_records(jsonl_data_under(s3, bucket, ""), datas(sent))


def test_one_stream_rotating_does_not_release_a_state_another_stream_still_holds(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, file_size_mb=1, flush_interval_seconds=3600)
    orders = numbered_records("orders", 1)
    users_before = numbered_records("users", 1000, pad=1000)  # ~1.1 MiB: one rotation
    users_after = numbered_records("users", 1000, start=1000, pad=1000)  # one more
    state = stream_state("users", {"cursor": 1000})
    with start_write(config, CATALOG) as process:
        process.send_many([*orders, *users_before, state, *users_after])
        wait_until(
            lambda: len(direct_keys(s3, bucket, "users/")) >= 2,
            timeout=30,
            what="two completed users objects",
        )
        seen = messages_within(process, 1.0)
        assert not [m for m in seen if is_state(m)], (
            "the STATE came out while the orders record before it was still in an open object"
        )
        assert direct_keys(s3, bucket, "orders/") == []
        run = process.finish(timeout=60)

    run.assert_success()
    assert_states(run, [with_destination_count(state, 1000)])  # users records only
    assert_same_records(
        jsonl_data_under(s3, bucket, ""), datas([*orders, *users_before, *users_after])
    )
