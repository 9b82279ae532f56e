"""The whole mapping from a boto3 failure to (code, failure_type, sentence), as a table."""

from __future__ import annotations

import botocore.exceptions
import pytest

from destination_s3.config import S3Location
from destination_s3.s3_client import RetryPolicy
from destination_s3.storage import describe_error

ACTION = "s3:PutObject on s3://bucket/users/x.jsonl"
ENDPOINT = "http://127.0.0.1:9"


def client_error(
    code: str | None, status: int, message: str = ""
) -> botocore.exceptions.ClientError:
    error = {"Message": message} if code is None else {"Code": code, "Message": message}
    response = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "PutObject")  # type: ignore[arg-type]


GRANT = "To fix: grant the permission in the IAM policy of the connector's user or role."
UNREACHABLE = (
    "To fix: check S3 Endpoint (empty for AWS) and that this network can reach it (DNS, "
    "firewall, proxy); an outage is retried by the next sync."
)


@pytest.mark.parametrize(
    ("error", "code", "config_error", "sentence"),
    [
        (
            client_error("AccessDenied", 403, "Access Denied"),
            "AccessDenied",
            True,
            f"{ACTION} failed for bucket 'bucket': AccessDenied (Access Denied). {GRANT}",
        ),
        # botocore names an error without a code by its status: still the settings' fault.
        (
            client_error("403", 403, "Forbidden"),
            "HTTP 403",
            True,
            f"{ACTION} failed for bucket 'bucket': HTTP 403 (Forbidden).",
        ),
        (
            client_error(None, 404),
            "HTTP 404",
            True,
            f"{ACTION} failed for bucket 'bucket': HTTP 404.",
        ),
        (
            client_error("400", 400, "Bad Request"),
            "HTTP 400",
            True,
            f"{ACTION} failed for bucket 'bucket': HTTP 400 (Bad Request).",
        ),
        (
            client_error("500", 500, "Internal Server Error"),
            "HTTP 500",
            False,
            f"{ACTION} failed for bucket 'bucket': HTTP 500 (Internal Server Error).",
        ),
        (
            client_error("NoSuchBucket", 404, "The specified bucket does not exist"),
            "NoSuchBucket",
            True,
            f"{ACTION} failed for bucket 'bucket': NoSuchBucket (The specified bucket does not "
            "exist). To fix: check the bucket name, or create the bucket.",
        ),
        (
            client_error("NoSuchUpload", 404, "gone"),
            "NoSuchUpload",
            False,
            f"{ACTION} failed for bucket 'bucket': NoSuchUpload (gone). To fix: an upload was "
            "aborted by a lifecycle rule or another process; retry the sync.",
        ),
        (
            client_error("InternalError", 500, "We encountered an internal error"),
            "InternalError",
            False,
            f"{ACTION} failed for bucket 'bucket': InternalError (We encountered an internal "
            "error).",
        ),
        (
            client_error("SlowDown", 503, "Please reduce your request rate."),
            "SlowDown",
            False,
            f"{ACTION} failed for bucket 'bucket': SlowDown (Please reduce your request rate.).",
        ),
        (
            client_error("PreconditionFailed", 412, "At least one of the pre-conditions"),
            "PreconditionFailed",
            False,
            f"{ACTION} failed for bucket 'bucket': PreconditionFailed (At least one of the "
            "pre-conditions).",
        ),
        (
            client_error("KMS.AccessDeniedException", 403, "no"),
            "KMS.AccessDeniedException",
            True,
            f"{ACTION} failed for bucket 'bucket': KMS.AccessDeniedException (no). To fix: grant "
            "kms:GenerateDataKey on the bucket's KMS key.",
        ),
        (
            client_error("InvalidAccessKeyId", 403, "bad key"),
            "InvalidAccessKeyId",
            True,
            f"{ACTION} failed for bucket 'bucket': InvalidAccessKeyId (bad key). To fix: the "
            "access key ID does not exist; check it or create a new key.",
        ),
        (
            botocore.exceptions.NoCredentialsError(),
            "NoCredentials",
            True,
            f"{ACTION} failed for bucket 'bucket': NoCredentials (no AWS credentials were found).",
        ),
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url=ENDPOINT),
            "EndpointUnreachable",
            True,
            f"{ACTION} failed for bucket 'bucket': EndpointUnreachable ({ENDPOINT} could not be "
            f'reached: Could not connect to the endpoint URL: "{ENDPOINT}"). {UNREACHABLE}',
        ),
        (
            ValueError("something else"),
            "ValueError",
            False,
            f"{ACTION} failed for bucket 'bucket': ValueError (something else).",
        ),
    ],
)
def test_describe_error(error: BaseException, code: str, config_error: bool, sentence: str) -> None:
    failure = describe_error(error, ACTION, ENDPOINT)
    assert (failure.code, failure.is_config_error, failure.sentence("bucket")) == (
        code,
        config_error,
        sentence,
    )
    traced = failure.traced("bucket")
    assert traced.message == sentence
    assert traced.failure_type is not None
    assert traced.failure_type.value == ("config_error" if config_error else "system_error")


@pytest.mark.parametrize(
    "error",
    [
        botocore.exceptions.EndpointConnectionError(endpoint_url=ENDPOINT),
        botocore.exceptions.ConnectTimeoutError(endpoint_url=ENDPOINT),
        botocore.exceptions.ReadTimeoutError(endpoint_url=ENDPOINT),
        botocore.exceptions.ConnectionClosedError(endpoint_url=ENDPOINT),
    ],
)
def test_an_endpoint_lost_after_it_answered_is_an_outage_not_a_setting(
    error: BaseException,
) -> None:
    before = describe_error(error, ACTION, ENDPOINT, reached=False)
    after = describe_error(error, ACTION, ENDPOINT, reached=True)
    assert (before.code, before.is_config_error) == ("EndpointUnreachable", True)
    assert (after.code, after.is_config_error) == ("EndpointUnreachable", False)
    assert ENDPOINT in after.sentence("bucket")


def test_the_default_retry_policy_gives_up_within_the_documented_bound() -> None:
    # README (Reliability): six attempts, at most 31 s of backoff between them (botocore's
    # standard mode: at most 1, 2, 4, 8, 16 s), so a dead endpoint fails within about 35 s.
    policy = RetryPolicy()
    assert policy.max_attempts == 6
    assert policy.worst_case_backoff_seconds() == 31
    config = policy.botocore_config(S3Location("bucket", "us-east-1", "", None), 4)
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert (config.connect_timeout, config.read_timeout) == (5.0, 60.0)
