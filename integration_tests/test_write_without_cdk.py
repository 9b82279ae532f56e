"""`write` never imports airbyte_cdk (over a second of CPU on every sync), whether it succeeds or
fails, and still reports every failure as one TRACE message."""

from __future__ import annotations

import re
from typing import Any

import pytest

from integration_tests.connector import (
    ConnectorRun,
    MakeConfig,
    configured_catalog,
    record,
    run_write,
    stream_state,
)

# `python -X importtime`: one stderr line per module imported.
IMPORT_TIMES = {"PYTHONPROFILEIMPORTTIME": "1"}
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", re.MULTILINE)


def imported(run: ConnectorRun) -> set[str]:
    modules = set(IMPORTED.findall(run.stderr))
    assert "destination_s3.cli" in modules, run.describe()
    return modules


def cdk_modules(run: ConnectorRun) -> list[str]:
    return sorted(m for m in imported(run) if m.split(".")[0] == "airbyte_cdk")


def test_an_empty_write_imports_no_cdk(bucket: str, make_config: MakeConfig) -> None:
    run = run_write(make_config(bucket), configured_catalog(["users"]), None, env=IMPORT_TIMES)
    run.assert_success()
    assert cdk_modules(run) == []
    assert "Starting sync" in str(run.logs("INFO")[0]["message"])


@pytest.mark.parametrize(
    ("case", "failure_type"),
    [("config error", "config_error"), ("bad input", "system_error")],
)
def test_a_failing_write_imports_no_cdk(
    bucket: str, make_config: MakeConfig, case: str, failure_type: str
) -> None:
    lines: list[Any] = [record("users", {"id": 1}), stream_state("users", {"cursor": 1})]
    config = make_config(bucket)
    if case == "config error":
        config["s3_bucket_region"] = "mars-1"
    else:
        lines.append("not JSON")
    run = run_write(config, configured_catalog(["users"]), lines, env=IMPORT_TIMES)
    assert run.returncode == 1, run.describe()
    [error] = run.trace_errors()
    assert error["failure_type"] == failure_type
    assert cdk_modules(run) == []


def test_an_unexpected_error_is_a_system_error_trace_not_a_traceback(
    bucket: str, make_config: MakeConfig
) -> None:
    env = {"DESTINATION_S3_UPLOAD_WORKERS": "four"}  # Tuning.from_environment cannot read it
    run = run_write(make_config(bucket), configured_catalog(["users"]), None, env=env)
    assert run.returncode == 1, run.describe()
    [error] = run.trace_errors()
    assert error["failure_type"] == "system_error"
    assert error["message"] == (
        "Something went wrong in the connector. See the logs for more details."
    )
    assert "four" in error["internal_message"]
    assert error["stack_trace"].startswith("Traceback (most recent call last):")
    assert [log["message"] for log in run.logs("ERROR")] == [error["internal_message"]]
    assert run.non_json_lines == [] and "Traceback" not in run.stderr
