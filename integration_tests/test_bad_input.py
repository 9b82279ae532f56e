"""Bad input stops the sync with a TRACE error naming the line (a short excerpt, never the whole
record); what was acknowledged stays, nothing else is left behind. Other message types and blank
lines are accepted quietly."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from integration_tests.connector import (
    ConnectorRun,
    MakeConfig,
    Message,
    configured_catalog,
    log_message,
    now_ms,
    record,
    run_write,
    start_write,
    stream_state,
    stream_status,
)
from integration_tests.readback import (
    FIXED_EMITTED_AT,
    assert_clean_stdout,
    assert_failed_with,
    assert_same_records,
    assert_states,
    datas,
    jsonl_data_under,
    numbered_records,
    wait_until,
    with_destination_count,
)
from integration_tests.s3_server import MotoServer

CATALOG = configured_catalog(["users"])

# Long enough that a short excerpt cannot reach it: seeing it means a whole line was echoed.
TAIL_MARKER = "WHOLE-RECORD-TAIL-7f3a9c"
PADDING = "p" * 300


def bad_line(kind: str) -> str:
    """One stdin line of the given kind of badness, ending with TAIL_MARKER far from its start."""
    payload = f"{PADDING}{TAIL_MARKER}"
    if kind == "not_json":
        return f"this is not JSON at all {payload}"
    if kind == "json_but_not_a_message":
        return json.dumps([1, 2, payload])
    if kind == "unknown_stream":
        return json.dumps(record("ghost_stream", {"pad": payload}, emitted_at=FIXED_EMITTED_AT))
    if kind == "data_is_array":
        message = record("users", {}, emitted_at=FIXED_EMITTED_AT)
        message["record"]["data"] = [1, payload]
        return json.dumps(message)
    if kind == "data_is_string":
        message = record("users", {}, emitted_at=FIXED_EMITTED_AT)
        message["record"]["data"] = payload
        return json.dumps(message)
    if kind == "record_without_record":
        return json.dumps({"type": "RECORD", "pad": payload})
    raise ValueError(kind)


BAD_KINDS = [
    "not_json",
    "json_but_not_a_message",
    "unknown_stream",
    "data_is_array",
    "data_is_string",
    "record_without_record",
]


def assert_rejected_line(run: ConnectorRun, line_number: int) -> None:
    error = assert_failed_with(run, "system_error")
    text = f"{error.get('message', '')} {error.get('internal_message', '')}"
    assert re.search(rf"\bline {line_number}\b", text), f"line {line_number} not named: {text!r}"
    output = run.stdout + run.stderr
    assert TAIL_MARKER not in output, "the whole bad line was echoed"
    assert PADDING not in output, "more than a short excerpt of the bad line was echoed"
    assert "Traceback" not in "\n".join(run.non_json_lines), run.describe()
    assert_clean_stdout(run)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_line_stops_the_sync_naming_the_line_without_echoing_it(
    kind: str, s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    users = numbered_records("users", 3)
    state = stream_state("users", {"cursor": 2})
    lines: list[Any] = [users[0], users[1], state, bad_line(kind), users[2]]

    run = run_write(make_config(bucket), CATALOG, lines)

    assert_rejected_line(run, 4)
    # Whatever state got out, its records are in S3; nothing after the bad line is.
    printed = run.states()
    assert printed in ([], [with_destination_count(state, 2)])
    in_s3 = jsonl_data_under(s3, bucket, "")
    if printed:
        assert_same_records(in_s3, datas(users[:2]))
    assert users[2]["record"]["data"] not in in_s3
    assert s3.list_multipart_uploads(bucket) == []


def test_states_acknowledged_before_a_bad_line_are_printed_and_their_data_kept(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, flush_interval_seconds=1)
    acknowledged = numbered_records("users", 2)
    unacknowledged = numbered_records("users", 2, start=2)
    state = stream_state("users", {"cursor": 2})
    with start_write(config, CATALOG) as process:
        process.send_many([*acknowledged, state])
        process.wait_for(lambda m: m.get("type") == "STATE", timeout=15)
        # Lines 1-3 are done; line 4 is a record, line 5 the bad one.
        process.send_many([unacknowledged[0], bad_line("not_json"), unacknowledged[1]])
        run = process.finish(timeout=60)

    assert_rejected_line(run, 5)
    assert_states(run, [with_destination_count(state, 2)])
    # The acknowledged records are there; the one in the object open at the failure is not.
    assert_same_records(jsonl_data_under(s3, bucket, ""), datas(acknowledged))
    assert s3.list_multipart_uploads(bucket) == []


@pytest.mark.slow
def test_failure_aborts_the_open_multipart_upload(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    # Default file size (128 MiB): parts of 5 MiB, so 6 MiB of records open a multipart upload.
    config = make_config(bucket, flush_interval_seconds=3600)
    users = numbered_records("users", 5600, pad=1000)
    with start_write(config, CATALOG) as process:
        process.send_many(users)
        wait_until(
            lambda: s3.list_multipart_uploads(bucket),
            timeout=30,
            what="the connector to open a multipart upload",
        )
        process.send(bad_line("data_is_array"))
        run = process.finish(timeout=60)

    assert_rejected_line(run, len(users) + 1)
    assert run.states() == []
    assert s3.list_multipart_uploads(bucket) == [], "a multipart upload was left open"
    assert s3.list_keys(bucket) == []


def test_trace_log_control_messages_and_blank_lines_are_accepted_and_not_echoed(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    marker = "source-side-message-5be1"
    users = numbered_records("users", 2)
    state = stream_state("users", {"cursor": 2})
    control: Message = {
        "type": "CONTROL",
        "control": {
            "type": "CONNECTOR_CONFIG",
            "emitted_at": float(now_ms()),
            "connectorConfig": {"config": {"note": marker}},
        },
    }
    source_error: Message = {
        "type": "TRACE",
        "trace": {
            "type": "ERROR",
            "emitted_at": float(now_ms()),
            "error": {"message": marker, "failure_type": "system_error"},
        },
    }
    lines: list[Any] = [
        "",
        log_message(marker),
        stream_status("users", "STARTED"),
        "   ",
        control,
        users[0],
        "\t",
        source_error,
        users[1],
        log_message(marker, level="ERROR"),
        stream_status("users", "COMPLETE"),
        "",
        state,
        "",
    ]
    run = run_write(make_config(bucket), CATALOG, lines).assert_success()

    assert_clean_stdout(run)
    assert run.traces() == [], "input TRACE messages were echoed"
    assert marker not in run.stdout, "an input LOG/TRACE/CONTROL message was echoed"
    assert_states(run, [with_destination_count(state, 2)])
    assert_same_records(jsonl_data_under(s3, bucket, ""), datas(users))
