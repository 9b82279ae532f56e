"""Many interleaved streams over the buffer budget: buffers spill to local disk and every stream
still lands as one object; a disk that refuses the spill costs smaller objects, never data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integration_tests.connector import (
    MAIN_PY,
    REPO_ROOT,
    ConnectorRun,
    MakeConfig,
    configured_catalog,
    record,
    run_connector,
    stream_state,
)
from integration_tests.readback import (
    assert_same_records,
    assert_states,
    datas,
    jsonl_data_under,
    with_destination_count,
)
from integration_tests.s3_server import MotoServer

LIMITED_MAIN = REPO_ROOT / "integration_tests" / "limited_main.py"
STREAMS = [f"stream_{index:03d}" for index in range(120)]
ROUNDS = 12
PAD = "p" * 1_000


def interleaved() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every stream gets one record of about 1 kB per round; a state closes each round.
    Each stream's buffer reaches a few kB before it is the largest and spills."""
    lines: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    for number in range(ROUNDS):
        lines += [record(name, {"id": number, "pad": PAD}) for name in STREAMS]
        states.append(stream_state(STREAMS[0], {"round": number}))
        lines.append(states[-1])
    return lines, states


def write(
    make_config: MakeConfig, bucket: str, env: dict[str, str], entrypoint: Path = MAIN_PY
) -> ConnectorRun:
    catalog = configured_catalog(STREAMS, generation_id=1, minimum_generation_id=1)
    lines, _ = interleaved()
    # 0.25 MiB of buffers for 1.5 MB of records: the budget is passed again and again.
    env = {"DESTINATION_S3_BUFFER_MB": "0.25", **env}
    return run_connector(
        ["write"],
        config=make_config(bucket),
        catalog=catalog,
        stdin_lines=lines,
        env=env,
        entrypoint=entrypoint,
    ).assert_success()


def assert_everything_landed(s3: MotoServer, bucket: str, run: ConnectorRun) -> list[str]:
    lines, states = interleaved()
    assert_states(run, [with_destination_count(state, 1) for state in states])
    for name in STREAMS:
        sent = datas(line for line in lines if line.get("record", {}).get("stream") == name)
        assert_same_records(jsonl_data_under(s3, bucket, f"{name}/"), sent)
    objects = [key for key in s3.list_keys(bucket) if not key.startswith("_tarsal")]
    markers = s3.list_keys(bucket, "_tarsal_generations/")
    assert len(markers) == len(objects)  # each object has its generation marker
    return objects


def test_many_streams_over_the_budget_spill_and_land_as_one_object_each(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    run = write(make_config, bucket, {"DESTINATION_S3_SPILL_DIR": str(tmp_path)})
    objects = assert_everything_landed(s3, bucket, run)
    assert sorted(key.split("/")[0] for key in objects) == STREAMS
    logs = [str(entry["message"]) for entry in run.logs()]
    assert any(
        message.startswith("Stream buffers hold more than 0.25 MiB: spilling the largest to ")
        for message in logs
    ), logs
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"DESTINATION_S3_TEST_FILE_LIMIT": "4096"}, id="disk-full-midway"),
        pytest.param({"DESTINATION_S3_SPILL_DIR": "/nonexistent/spill"}, id="no-such-directory"),
    ],
)
def test_a_disk_refusing_the_spill_costs_smaller_objects_not_data(
    s3: MotoServer, bucket: str, make_config: MakeConfig, fault: dict[str, str]
) -> None:
    limited = "DESTINATION_S3_TEST_FILE_LIMIT" in fault
    run = write(make_config, bucket, fault, LIMITED_MAIN if limited else MAIN_PY)
    objects = assert_everything_landed(s3, bucket, run)
    assert len(objects) > len(STREAMS)  # objects completed early instead
    reason = "File too large" if limited else "No such file or directory"
    assert [entry["message"] for entry in run.logs("WARN")] == [
        f"Could not spill stream buffers to "
        f"{'the temporary directory' if limited else '/nonexistent/spill'} ({reason}): "
        "completing the objects opened earliest instead, which makes more, smaller objects. "
        "Point DESTINATION_S3_SPILL_DIR at a writable disk with room, or set "
        "DESTINATION_S3_SPILL_MB=0 to silence this."
    ]


def test_a_low_open_file_limit_caps_the_spill_files_and_loses_nothing(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    # 64 descriptors for 120 streams: at most 32 spill files open at once; the objects of the
    # streams that find no file complete early instead, and nothing runs out of descriptors.
    run = write(make_config, bucket, {"DESTINATION_S3_TEST_OPEN_FILES": "64"}, LIMITED_MAIN)
    objects = assert_everything_landed(s3, bucket, run)
    assert len(objects) > len(STREAMS)
    assert not run.logs("WARN")
    assert "Too many open files" not in run.log_text()
    logs = [str(entry["message"]) for entry in run.logs()]
    assert any(message.startswith("Stream buffers hold more than") for message in logs), logs
