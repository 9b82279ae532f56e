"""S3 faults, injected by a seeded proxy between the connector (a subprocess) and the S3 server.

Each test asserts what a user relies on: every record lands exactly once, states come out in order
(all of them on success, none after the last durable one on failure), no multipart upload is left
open, and a failure ends within a stated time with a TRACE that names its cause.
"""

from __future__ import annotations

import collections
import signal
import time
from typing import Any

import pytest

from integration_tests.connector import (
    ConnectorRun,
    MakeConfig,
    Message,
    configured_catalog,
    record,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.fault_proxy import FaultProxy
from integration_tests.s3_server import MotoServer

STREAMS = ["users", "orders"]
PAD = "x" * 1000
# Records of ≈1.07 KB: a stream passes S3's 5 MiB part size after ≈4,900 of them.
MULTIPART = 6000
# Enough attempts that a 30 % fault rate never exhausts them by chance (0.3^12 per call).
MANY_ATTEMPTS = {"DESTINATION_S3_MAX_ATTEMPTS": "12"}
FEW_ATTEMPTS = {"DESTINATION_S3_MAX_ATTEMPTS": "3"}


def _messages(per_stream: int, state_every: int, first_id: int = 0) -> list[Message]:
    """Records of both streams interleaved, a STREAM state after every `state_every` of each."""
    lines: list[Message] = []
    for index in range(first_id, first_id + per_stream):
        for stream in STREAMS:
            lines.append(record(stream, {"id": index, "pad": PAD}))
            if (index + 1) % state_every == 0:
                lines.append(stream_state(stream, {"cursor": index}))
    return lines


def _cursors(states: list[Message]) -> list[tuple[str, int]]:
    """(stream, cursor) of STATE payloads (`state` objects, as sent or as printed)."""
    return [
        (state["stream"]["stream_descriptor"]["name"], state["stream"]["stream_state"]["cursor"])
        for state in states
    ]


def _ids_in_bucket(s3: MotoServer, bucket: str) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = collections.defaultdict(list)
    for key in s3.list_keys(bucket):
        if key.startswith("_tarsal_"):
            continue
        for line in s3.read_jsonl(bucket, key):
            ids[key.split("/")[0]].append(line["data"]["id"])
    return {stream: sorted(found) for stream, found in ids.items()}


def _assert_complete(run: ConnectorRun, s3: MotoServer, bucket: str, per_stream: int) -> None:
    run.assert_success()
    assert _ids_in_bucket(s3, bucket) == {stream: list(range(per_stream)) for stream in STREAMS}
    sent = _cursors([m["state"] for m in _messages(per_stream, 50) if m["type"] == "STATE"])
    assert _cursors(run.states()) == sent
    assert s3.list_multipart_uploads(bucket) == []
    assert "Traceback" not in run.stderr


def _config(make_config: MakeConfig, bucket: str, proxy: FaultProxy, **extra: Any) -> Any:
    # 6 MiB objects: one 5 MiB part, then a completion with the rest (multipart every time).
    return make_config(bucket, endpoint=proxy.endpoint, file_size_mb=6, **extra)


@pytest.mark.parametrize("seed", [1, 2])
def test_bursts_of_500_and_503_lose_and_duplicate_nothing(
    s3: MotoServer, bucket: str, make_config: MakeConfig, fault_proxy: FaultProxy, seed: int
) -> None:
    # 30 % of all requests fail before reaching S3. Which requests get a fault depends on the
    # order they arrive in (upload threads race), so only the totals are asserted here; the
    # tests below hit each operation deterministically.
    fault_proxy.reset(seed)
    fault_proxy.add_rule("error_before", probability=0.15, status=500, code="InternalError")
    fault_proxy.add_rule("error_before", probability=0.15, status=503, code="SlowDown")
    catalog = configured_catalog(STREAMS, generation_id=2, minimum_generation_id=0)
    run = run_write(
        _config(make_config, bucket, fault_proxy), catalog, _messages(3 * MULTIPART, 50),
        env=MANY_ATTEMPTS,
    )  # fmt: skip
    _assert_complete(run, s3, bucket, 3 * MULTIPART)
    stats = fault_proxy.stats
    assert stats.seen() >= 30 and stats.faults() >= 5, stats.summary()


# Each fault hits the first two requests of one operation; the sync must still succeed, with
# every record once. botocore retries each: an UploadPart is sent again (same part number); a
# retried Complete or conditional PutObject finds the object already there (the connector
# confirms its own bytes by ListBucket); a retried Create opens a second upload (the first is
# aborted); resets, an error inside a 200 answer and slow answers are plain retries.
ONE_OPERATION_FAULTS = [
    *(
        (kind, operation)
        for kind in ("error_after", "reset_after")
        for operation in (
            "UploadPart",
            "CompleteMultipartUpload",
            "CreateMultipartUpload",
            "PutObject",  # the conditional PutObject of a small object
        )
    ),
    ("reset_before", "UploadPart"),
    ("reset_mid_request", "UploadPart"),
    ("reset_mid_request", "PutObject"),
    ("ok_with_error_body", "CompleteMultipartUpload"),
    ("delay", "UploadPart"),
]


@pytest.mark.parametrize(("kind", "operation"), ONE_OPERATION_FAULTS)
def test_a_fault_on_one_operation_is_retried_without_loss_or_duplicate(
    s3: MotoServer,
    bucket: str,
    make_config: MakeConfig,
    fault_proxy: FaultProxy,
    kind: str,
    operation: str,
) -> None:
    fault_proxy.add_rule(kind, operation, first=2, delay_s=1.5)  # type: ignore[arg-type]
    per_stream = MULTIPART if operation != "PutObject" else 100
    run = run_write(
        _config(make_config, bucket, fault_proxy),
        configured_catalog(STREAMS),
        _messages(per_stream, 50),
    )
    _assert_complete(run, s3, bucket, per_stream)
    assert fault_proxy.stats.faults(kind, operation) == 2, fault_proxy.stats.summary()


def _durable_prefix_only(run: ConnectorRun, s3: MotoServer, bucket: str) -> None:
    """No state was released whose records are not all in S3."""
    landed = _ids_in_bucket(s3, bucket)
    for stream, cursor in _cursors(run.states()):
        assert set(range(cursor + 1)) <= set(landed.get(stream, [])), (stream, cursor)


@pytest.mark.parametrize("mode", ["503", "refuse"])
def test_s3_gone_for_good_fails_in_bounded_time_naming_the_cause(
    s3: MotoServer, bucket: str, make_config: MakeConfig, fault_proxy: FaultProxy, mode: str
) -> None:
    config = _config(make_config, bucket, fault_proxy, flush_interval_seconds=1)
    with start_write(config, configured_catalog(STREAMS), env=FEW_ATTEMPTS) as sync:
        sync.send_many(_messages(100, 50))
        sync.wait_for_type("STATE", timeout=30)
        fault_proxy.go_dead(mode)  # type: ignore[arg-type]
        sync.send_many(_messages(100, 50, first_id=100))
        sync.close_stdin()
        started = time.monotonic()
        run = sync.finish(timeout=60)
        took = time.monotonic() - started
    assert run.returncode == 1
    [error] = run.trace_errors()
    if mode == "503":
        assert "SlowDown" in error["message"], error
    else:
        assert "EndpointUnreachable" in error["message"], error
        assert f"{fault_proxy.endpoint} could not be reached" in error["message"], error
        # S3 had answered earlier in the sync: an outage, not a wrong setting.
    assert error["failure_type"] == "system_error"
    # Three attempts: at most 1 + 2 s of backoff, plus the abort grace.
    assert took < 20, took
    _durable_prefix_only(run, s3, bucket)
    fault_proxy.revive()
    assert "Traceback" not in run.stderr


def test_an_unreachable_endpoint_is_reported_within_the_documented_bound(
    s3: MotoServer, bucket: str, make_config: MakeConfig, fault_proxy: FaultProxy
) -> None:
    # Default retry policy: six attempts, at most 31 s of backoff (README: Reliability).
    fault_proxy.go_dead("refuse")
    started = time.monotonic()
    run = run_write(_config(make_config, bucket, fault_proxy), configured_catalog(STREAMS),
                    _messages(10, 50))  # fmt: skip
    took = time.monotonic() - started
    fault_proxy.revive()
    assert run.returncode == 1
    [error] = run.trace_errors()
    assert error["failure_type"] == "config_error"  # never reached: most likely the setting
    assert f"{fault_proxy.endpoint} could not be reached" in error["message"]
    assert "To fix: check S3 Endpoint" in error["message"]
    assert took < 45, took
    assert run.states() == []


def _terminate_during_stuck_upload(
    make_config: MakeConfig, bucket: str, fault_proxy: FaultProxy
) -> tuple[ConnectorRun, float]:
    config = _config(make_config, bucket, fault_proxy)
    with start_write(config, configured_catalog(STREAMS)) as sync:
        sync.send_many(_messages(MULTIPART, 50))  # over 5 MiB per stream: parts are uploading
        deadline = time.monotonic() + 30
        while not fault_proxy.stats.seen("UploadPart") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fault_proxy.stats.seen("UploadPart"), fault_proxy.stats.summary()
        sync.terminate(signal.SIGTERM)
        started = time.monotonic()
        run = sync.finish(timeout=60)
        return run, time.monotonic() - started


def test_sigterm_with_a_hanging_s3_exits_within_the_grace_and_aborts(
    s3: MotoServer, bucket: str, make_config: MakeConfig, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add_rule("delay", "UploadPart", delay_s=120)
    run, took = _terminate_during_stuck_upload(make_config, bucket, fault_proxy)
    assert run.returncode == 1
    assert took < 20, took  # Kubernetes kills after 30 s by default
    [error] = run.trace_errors()
    message = error["message"]
    assert message.startswith("The sync was cancelled by signal SIGTERM; ")
    assert "open uploads were aborted" in message and "could not be aborted" not in message
    assert s3.list_multipart_uploads(bucket) == []
    assert run.states() == []


def test_sigterm_with_s3_unreachable_says_what_was_left_open(
    s3: MotoServer, bucket: str, make_config: MakeConfig, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add_rule("delay", "UploadPart", delay_s=120)
    fault_proxy.add_rule("error_before", "AbortMultipartUpload", status=503, code="SlowDown")
    run, took = _terminate_during_stuck_upload(make_config, bucket, fault_proxy)
    assert run.returncode == 1
    assert took < 20, took
    [error] = run.trace_errors()
    message = error["message"]
    assert "0 open uploads were aborted; " in message
    assert "could not be aborted in time and may stay open (s3://" in message
    assert "lifecycle rule" in message
    assert len(s3.list_multipart_uploads(bucket)) >= 1  # as the message says


def test_an_error_answered_before_the_body_is_read_names_s3s_code(
    s3: MotoServer, bucket: str, make_config: MakeConfig, fault_proxy: FaultProxy
) -> None:
    # Without `Expect: 100-continue` (bodies are sent whole), S3 may answer a part it refuses
    # while the part is still on its way, and close; the sync must report S3's code, not a lost
    # connection (urllib3 reads the answer after a broken pipe or reset while sending).
    fault_proxy.add_rule("error_early", "UploadPart", status=404, code="NoSuchUpload")
    run = run_write(
        _config(make_config, bucket, fault_proxy),
        configured_catalog(STREAMS),
        _messages(MULTIPART, 50),
        env=FEW_ATTEMPTS,
    )
    assert run.returncode == 1
    [error] = run.trace_errors()
    assert "NoSuchUpload" in error["message"], error
    assert fault_proxy.stats.faults("error_early", "UploadPart") >= 1
    assert s3.list_multipart_uploads(bucket) == []
    assert "Traceback" not in run.stderr
