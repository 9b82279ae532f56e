"""Config errors through the real CLI: each names the field and what is allowed, never a secret;
options that would change the output are refused rather than silently ignored."""

from __future__ import annotations

from typing import Any

import pytest

from integration_tests.connector import (
    MakeConfig,
    access_key_credentials,
    configured_catalog,
    record,
    run_check,
    run_write,
)
from integration_tests.readback import run_concurrently
from integration_tests.s3_server import MotoServer

# A secret that is also a word of the message that reports it: masking must not garble it.
SHORT_SECRET = "short"


def _invalid_configs(make_config: MakeConfig, bucket: str) -> list[tuple[dict[str, Any], str]]:
    with_compression = make_config(
        bucket, format={"format_type": "CSV", "compression": {"compression_type": "SNAPPY"}}
    )
    return [
        (
            make_config(bucket, credentials=access_key_credentials(SHORT_SECRET, "x" * 40)),
            "credentials.access_key_id (S3 Key ID) must be from 16 to 128 characters long; "
            "the value given is shorter.",
        ),
        (
            with_compression,
            'format.compression.compression_type must be one of "No Compression", "GZIP", '
            '"ZSTD"; got "SNAPPY".',
        ),
        (
            make_config(bucket, file_name_pattern="{date}_{part_number}"),
            "file_name_pattern is not supported by this connector yet",
        ),
    ]


def test_check_names_the_field_and_never_the_secret(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    cases = _invalid_configs(make_config, bucket)
    runs = run_concurrently(*(lambda config=config: run_check(config) for config, _ in cases))
    for run, (_, expected) in zip(runs, cases, strict=True):
        assert run.returncode == 0, run.describe()
        status = run.connection_status()
        assert status is not None and status["status"] == "FAILED", run.describe()
        assert expected in status["message"], status["message"]
        assert "****" not in run.stdout and "Traceback" not in run.stderr
    assert s3.list_keys(bucket) == []


@pytest.mark.parametrize("case", [0, 1, 2])
def test_write_refuses_with_a_config_error_before_reading_input(
    s3: MotoServer, bucket: str, make_config: MakeConfig, case: int
) -> None:
    config, expected = _invalid_configs(make_config, bucket)[case]
    run = run_write(config, configured_catalog(["users"]), [record("users", {"id": 1})])
    assert run.returncode == 1
    [error] = run.trace_errors()
    assert error["failure_type"] == "config_error"
    assert expected in error["message"], error
    assert "****" not in run.stdout and "Traceback" not in run.stderr
    assert s3.list_keys(bucket) == []


def test_fields_with_defaults_may_be_left_out(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, format={"format_type": "CSV"})
    del config["s3_bucket_region"]
    config["airbyte_only_setting"] = True  # unknown, changes nothing: warned, not refused
    run = run_write(config, configured_catalog(["users"]), [record("users", {"id": 1})])
    run.assert_success()
    [key] = s3.list_keys(bucket, "users/")
    assert s3.read_text(bucket, key).startswith("_tarsal_metadata,data\r\n")
    warnings = " ".join(str(log["message"]) for log in run.logs("WARN"))
    assert "airbyte_only_setting" in warnings
