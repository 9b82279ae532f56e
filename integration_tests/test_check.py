"""`check` against moto with IAM enforcement: the seed's least-privilege policy passes, and every
failure is a CONNECTION_STATUS FAILED (exit 0) whose message names what failed and why."""

from __future__ import annotations

from typing import Any

from integration_tests.connector import (
    ConnectorRun,
    MakeConfig,
    access_key_credentials,
    run_check,
)
from integration_tests.readback import assert_clean_stdout, run_concurrently
from integration_tests.s3_server import MotoServer, seed_policy, unique_name

PROBE_NAME = "_tarsal_connection_check.txt"


def assert_check(run: ConnectorRun, status: str) -> str:
    """Exit 0, one CONNECTION_STATUS with ``status``, no TRACE error; returns its message."""
    assert run.returncode == 0, run.describe()
    assert_clean_stdout(run)
    assert not run.trace_errors(), run.describe()
    assert len(run.of_type("CONNECTION_STATUS")) == 1, run.describe()
    connection_status = run.connection_status()
    assert connection_status is not None
    assert connection_status["status"] == status, connection_status
    return str(connection_status.get("message") or "")


def bucket_policy(bucket: str, actions: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }


def test_check_succeeds_with_seed_least_privilege_policy_and_leaves_one_probe_object(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    s3.put_object(bucket, "exports/raw/users/existing.jsonl", b"{}\n")
    user = s3.create_user_with_policy("seed-user", seed_policy(bucket))
    s3.enforce_iam(True)
    config = make_config(
        bucket,
        "/exports/raw/",
        credentials=access_key_credentials(user.access_key_id, user.secret_access_key),
    )

    for _ in range(2):  # the second run must not add a second probe
        message = assert_check(run_check(config), "SUCCEEDED")
        assert bucket in message

    keys = s3.list_keys(bucket)
    probes = [key for key in keys if key != "exports/raw/users/existing.jsonl"]
    assert len(probes) <= 1, f"repeated checks left {probes}"
    # The probe, if any, lives under the configured bucket path.
    assert all(key.startswith("exports/raw/") for key in probes), probes
    assert s3.list_multipart_uploads(bucket) == []


def test_check_fails_with_unknown_access_key_or_wrong_secret(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    user = s3.create_user_with_policy("seed-user", seed_policy(bucket))
    s3.enforce_iam(True)
    unknown_key = make_config(
        bucket,
        credentials=access_key_credentials(
            "AKIAUNKNOWNKEY123456", "nobody-knows-this-secret-0123456789abcdef"
        ),
    )
    wrong_secret = make_config(
        bucket,
        credentials=access_key_credentials(
            user.access_key_id, "not-the-right-secret-0123456789abcdefghij"
        ),
    )
    unknown_run, wrong_run = run_concurrently(
        lambda: run_check(unknown_key), lambda: run_check(wrong_secret)
    )

    unknown_message = assert_check(unknown_run, "FAILED")
    assert "InvalidAccessKeyId" in unknown_message
    assert bucket in unknown_message
    wrong_message = assert_check(wrong_run, "FAILED")
    assert "SignatureDoesNotMatch" in wrong_message
    assert bucket in wrong_message
    assert s3.list_keys(bucket) == []


def test_check_fails_for_missing_bucket(s3: MotoServer, make_config: MakeConfig) -> None:
    # Admin credentials (Allow *): the only thing wrong is that the bucket does not exist.
    s3.enforce_iam(True)
    missing = unique_name("no-such-bucket")
    message = assert_check(run_check(make_config(missing)), "FAILED")
    assert "NoSuchBucket" in message
    assert missing in message


def test_check_fails_without_put_object_naming_the_action_and_object(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    user = s3.create_user_with_policy(
        "no-put", bucket_policy(bucket, ["s3:ListBucket", "s3:GetBucketLocation"])
    )
    s3.enforce_iam(True)
    config = make_config(
        bucket,
        "some/path",
        credentials=access_key_credentials(user.access_key_id, user.secret_access_key),
    )
    message = assert_check(run_check(config), "FAILED")
    assert f"s3:PutObject on s3://{bucket}/some/path/" in message
    assert "AccessDenied" in message
    assert s3.list_keys(bucket) == []


def test_check_fails_without_list_bucket_or_get_bucket_location(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    no_list = s3.create_user_with_policy(
        "no-list",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
                {
                    "Effect": "Allow",
                    "Action": "s3:GetBucketLocation",
                    "Resource": f"arn:aws:s3:::{bucket}",
                },
            ],
        },
    )
    no_location = s3.create_user_with_policy(
        "no-location",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                },
            ],
        },
    )
    s3.enforce_iam(True)
    runs = run_concurrently(
        *(
            lambda keys=keys: run_check(
                make_config(
                    bucket,
                    credentials=access_key_credentials(keys.access_key_id, keys.secret_access_key),
                )
            )
            for keys in (no_list, no_location)
        )
    )
    no_list_message = assert_check(runs[0], "FAILED")
    assert f"s3:ListBucket on s3://{bucket}" in no_list_message
    assert "AccessDenied" in no_list_message
    no_location_message = assert_check(runs[1], "FAILED")
    assert f"s3:GetBucketLocation on s3://{bucket}" in no_location_message
    assert "AccessDenied" in no_location_message


def test_check_fails_on_region_mismatch_naming_both_regions(
    s3: MotoServer, make_config: MakeConfig
) -> None:
    eu_bucket = s3.create_bucket(unique_name("it-eu"), region="eu-west-1")
    user = s3.create_user_with_policy("seed-user", seed_policy(eu_bucket))
    s3.enforce_iam(True)
    config = make_config(
        eu_bucket,
        credentials=access_key_credentials(user.access_key_id, user.secret_access_key),
        region="us-east-1",
    )
    message = assert_check(run_check(config), "FAILED")
    assert "eu-west-1" in message
    assert "us-east-1" in message
    assert eu_bucket in message
    assert s3.list_keys(eu_bucket) == []


def test_check_with_config_invalid_against_spec_fails_without_crashing(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    short_key = make_config(
        bucket, credentials=access_key_credentials("AKIASHORT", "a-long-enough-secret-value")
    )
    bad_region = {**make_config(bucket), "s3_bucket_region": "mars-north-1"}
    no_bucket_name = make_config(bucket)
    del no_bucket_name["s3_bucket_name"]
    bad_format = make_config(bucket, format={"format_type": "PARQUET"})

    runs = run_concurrently(
        *(
            lambda config=config: run_check(config)
            for config in (short_key, bad_region, no_bucket_name, bad_format)
        )
    )
    for run in runs:
        message = assert_check(run, "FAILED")
        assert message, run.describe()
        assert "Traceback" not in run.stdout + run.stderr, run.describe()
    assert s3.list_keys(bucket) == []
