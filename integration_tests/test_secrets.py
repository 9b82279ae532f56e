"""Secrets never reach stdout or stderr: not on check (success or failure), not on write (success
or failure), not through config validation messages; the LOG config summary leaves them out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from integration_tests.connector import (
    ConnectorRun,
    MakeConfig,
    access_key_credentials,
    aws_env,
    configured_catalog,
    iam_role_credentials,
    run_check,
    run_write,
    stream_state,
)
from integration_tests.readback import (
    assert_secret_free,
    numbered_records,
    run_concurrently,
)
from integration_tests.s3_server import MotoServer, UserKeys, seed_policy

EXTERNAL_ID = f"ext-{uuid.uuid4()}"
WRONG_EXTERNAL_ID = f"wrong-ext-{uuid.uuid4()}"
WRONG_SECRET = f"Wr0ng/{uuid.uuid4().hex}"
TOO_LONG_SECRET = "L0ng" + uuid.uuid4().hex * 5  # 164 chars: over the spec's 128
TOO_SHORT_SECRET = "Sh0rt" + uuid.uuid4().hex[:6]  # 11 chars: under the spec's 16


def keys_of(user: UserKeys, secret: str | None = None) -> dict[str, str]:
    return access_key_credentials(user.access_key_id, secret or user.secret_access_key)


def test_secrets_never_appear_in_check_or_write_output(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    good = s3.create_user_with_policy("seed-user", seed_policy(bucket))
    no_put = s3.create_user_with_policy(
        "no-put",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": f"arn:aws:s3:::{bucket}",
                }
            ],
        },
    )
    base = s3.create_user_with_policy("base-user", None)
    role_arn = s3.create_role("writer-role", base.arn, seed_policy(bucket), EXTERNAL_ID)
    s3.enforce_iam(True)

    env = aws_env(base.access_key_id, base.secret_access_key)
    catalog = configured_catalog(["users"])
    lines: list[Any] = [*numbered_records("users", 3), stream_state("users", {"cursor": 3})]
    bad_lines: list[Any] = [*lines, "not JSON", *numbered_records("users", 1, start=3)]

    def config(credentials: dict[str, str]) -> dict[str, Any]:
        return make_config(bucket, "secret-test", credentials=credentials)

    role_ok = config(iam_role_credentials(role_arn, EXTERNAL_ID))
    role_wrong = config(iam_role_credentials(role_arn, WRONG_EXTERNAL_ID))
    everything = [
        good.secret_access_key,
        no_put.secret_access_key,
        base.secret_access_key,
        WRONG_SECRET,
        TOO_LONG_SECRET,
        TOO_SHORT_SECRET,
        EXTERNAL_ID,
        WRONG_EXTERNAL_ID,
    ]
    # name -> (how to run it, whether it must succeed, does it get as far as the sync's start)
    scenarios: dict[str, tuple[Callable[[], ConnectorRun], bool, bool]] = {
        "check ok": (lambda: run_check(config(keys_of(good))), True, False),
        "check wrong secret": (
            lambda: run_check(config(keys_of(good, WRONG_SECRET))),
            False,
            False,
        ),
        "check secret too short": (
            lambda: run_check(config(keys_of(good, TOO_SHORT_SECRET))),
            False,
            False,
        ),
        "check role ok": (lambda: run_check(role_ok, env=env), True, False),
        "check role wrong external id": (lambda: run_check(role_wrong, env=env), False, False),
        "write ok": (lambda: run_write(config(keys_of(good)), catalog, lines), True, True),
        "write denied": (lambda: run_write(config(keys_of(no_put)), catalog, lines), False, True),
        "write bad input": (
            lambda: run_write(config(keys_of(good)), catalog, bad_lines),
            False,
            True,
        ),
        "write secret too long": (
            lambda: run_write(config(keys_of(good, TOO_LONG_SECRET)), catalog, lines),
            False,
            False,
        ),
        "write role ok": (lambda: run_write(role_ok, catalog, lines, env=env), True, True),
        "write role wrong external id": (
            lambda: run_write(role_wrong, catalog, lines, env=env),
            False,
            True,
        ),
    }
    runs = dict(
        zip(scenarios, run_concurrently(*(call for call, _, _ in scenarios.values())), strict=True)
    )

    for name, run in runs.items():
        _, must_succeed, logs_summary = scenarios[name]
        assert_secret_free(run, everything)
        if run.args == ["check"]:
            assert run.returncode == 0, f"{name}: {run.describe()}"
            status = run.connection_status()
            assert status is not None, f"{name}: {run.describe()}"
            assert status["status"] == ("SUCCEEDED" if must_succeed else "FAILED"), name
        elif must_succeed:
            run.assert_success()
        else:
            assert run.returncode != 0 and run.trace_errors(), f"{name}: {run.describe()}"
        if logs_summary:
            # The config summary: where the data goes, how, and as whom, but no secret.
            summary = str(run.logs()[0]["message"])
            assert bucket in summary, f"{name}: no config summary first: {summary!r}"
            assert "secret-test" in summary, summary
            assert "us-east-1" in summary, summary
