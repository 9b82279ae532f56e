"""IAM role authentication through STS AssumeRole (base credentials from the environment).

moto lets an AssumeRole call WITHOUT an ExternalId through even when the trust policy requires
one (AWS denies it), so "missing external id is refused" is not tested here.
"""

from __future__ import annotations

from integration_tests.connector import (
    MakeConfig,
    aws_env,
    configured_catalog,
    iam_role_credentials,
    run_check,
    run_write,
    stream_state,
)
from integration_tests.readback import (
    assert_failed_with,
    assert_same_records,
    assert_states,
    datas,
    jsonl_data_under,
    numbered_records,
    run_concurrently,
    with_destination_count,
)
from integration_tests.s3_server import MotoServer, seed_policy

EXTERNAL_ID = "tarsal-ext-4c54-9dad-78674c93f00d"


def test_role_with_required_external_id_check_and_write_succeed(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    base = s3.create_user_with_policy("base-user", None)  # may only assume the role
    role_arn = s3.create_role("writer-role", base.arn, seed_policy(bucket), EXTERNAL_ID)
    s3.enforce_iam(True)
    config = make_config(bucket, "out", credentials=iam_role_credentials(role_arn, EXTERNAL_ID))
    env = aws_env(base.access_key_id, base.secret_access_key)
    users = numbered_records("users", 3)
    state = stream_state("users", {"cursor": 3})

    check, write = run_concurrently(
        lambda: run_check(config, env=env),
        lambda: run_write(config, configured_catalog(["users"]), [*users, state], env=env),
    )

    assert check.returncode == 0, check.describe()
    status = check.connection_status()
    assert status is not None and status["status"] == "SUCCEEDED", check.describe()
    write.assert_success()
    assert_states(write, [with_destination_count(state, 3)])
    assert_same_records(jsonl_data_under(s3, bucket, "out/users/"), datas(users))


def test_role_with_wrong_external_id_fails_naming_sts_assume_role(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    base = s3.create_user_with_policy("base-user", None)
    role_arn = s3.create_role("writer-role", base.arn, seed_policy(bucket), EXTERNAL_ID)
    s3.enforce_iam(True)
    config = make_config(
        bucket, credentials=iam_role_credentials(role_arn, "not-the-external-id-0000")
    )
    env = aws_env(base.access_key_id, base.secret_access_key)

    check, write = run_concurrently(
        lambda: run_check(config, env=env),
        lambda: run_write(
            config, configured_catalog(["users"]), numbered_records("users", 2), env=env
        ),
    )

    assert check.returncode == 0, check.describe()
    status = check.connection_status()
    assert status is not None and status["status"] == "FAILED", check.describe()
    assert "sts:AssumeRole" in status["message"]
    assert role_arn in status["message"]
    assert "AccessDenied" in status["message"]

    assert_failed_with(write, "config_error", "sts:AssumeRole", role_arn)
    assert write.states() == []
    assert s3.list_keys(bucket) == []
