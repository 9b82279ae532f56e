"""A small error taxonomy: what went wrong, in words the user can act on, and whose fault it is.

Every failure that leaves the connector becomes an `AirbyteTracedException` built here, so the
mapping from AWS error codes to Airbyte's failure_type lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

# AWS error codes that mean the configuration (credentials, permissions, bucket, region, endpoint)
# is wrong, with what the user should do about each.
_CONFIG_ERROR_ADVICE: dict[str, str] = {
    "AccessDenied": "grant the permission in the IAM policy of the connector's user or role",
    "AllAccessDisabled": "access to this bucket is disabled; use another bucket",
    "AccountProblem": "the AWS account has a problem; check it in the AWS console",
    "InvalidAccessKeyId": "the access key ID does not exist; check it or create a new key",
    "SignatureDoesNotMatch": "the secret access key does not match the key ID; re-enter it",
    "InvalidClientTokenId": "the credentials used to call STS are not valid",
    "ExpiredToken": "the credentials have expired; supply fresh ones",
    "InvalidToken": "the session token is not valid; supply fresh credentials",
    "NoSuchBucket": "check the bucket name, or create the bucket",
    "PermanentRedirect": "the bucket is in another region; set S3 Bucket Region to its region",
    "AuthorizationHeaderMalformed": "the bucket is in another region; set S3 Bucket Region to it",
    "IllegalLocationConstraintException": "set S3 Bucket Region to the bucket's region",
    "InvalidBucketName": "check the bucket name",
    "KMS.AccessDeniedException": "grant kms:GenerateDataKey on the bucket's KMS key",
    "NoSuchUpload": "an upload was aborted by a lifecycle rule or another process; retry the sync",
    "EndpointUnreachable": (
        "check S3 Endpoint (empty for AWS) and that this network can reach it (DNS, firewall, "
        "proxy); an outage is retried by the next sync"
    ),
}

# HTTP statuses that, without a known code, still point at configuration.
_CONFIG_STATUSES = {301, 400, 403, 404}


@dataclass(frozen=True)
class S3Failure:
    """An S3/STS call that failed, described without any secret."""

    action: str  # e.g. "s3:PutObject on s3://bucket/path/key"
    code: str  # the AWS error code, or the exception class name for non-AWS errors
    detail: str  # the AWS error message
    is_config_error: bool
    # S3 answered the first and only attempt with this error: the request had no effect.
    answered_at_once: bool = False

    def sentence(self, bucket: str) -> str:
        advice = _CONFIG_ERROR_ADVICE.get(self.code, "")
        text = f"{self.action} failed for bucket '{bucket}': {self.code}"
        if self.detail:
            text += f" ({self.detail})"
        if advice:
            text += f". To fix: {advice}"
        return text + "."

    def traced(self, bucket: str, exception: BaseException | None = None) -> AirbyteTracedException:
        message = self.sentence(bucket)
        return AirbyteTracedException(
            message=message,
            internal_message=message,
            failure_type=FailureType.config_error
            if self.is_config_error
            else FailureType.system_error,
            exception=exception,
        )


def is_config_error_code(code: str, http_status: int | None) -> bool:
    if code in _CONFIG_ERROR_ADVICE and code not in ("NoSuchUpload", "EndpointUnreachable"):
        return True
    # An error without a code (botocore then uses the status as the code, e.g. "403"): the
    # status alone says whether the settings are at fault.
    return (code == "" or code.isdigit()) and http_status in _CONFIG_STATUSES


class Cancelled(BaseException):
    """The orchestrator cancelled the sync (SIGTERM). A BaseException, like KeyboardInterrupt, so
    that no `except Exception` on the way up mistakes it for a failed call."""


class InputError(Exception):
    """A line on stdin that the connector cannot accept: the sync stops, nothing is lost."""

    def __init__(self, line_number: int, problem: str, excerpt: bytes | None = None) -> None:
        text = f"Input line {line_number}: {problem}"
        if excerpt is not None:
            shown = excerpt[:80].decode("utf-8", "replace")
            text += f" (starts with: {shown!r}{'…' if len(excerpt) > 80 else ''})"
        super().__init__(text)
        self.line_number = line_number

    def traced(self) -> AirbyteTracedException:
        # The source or the platform sent something that is not the Airbyte protocol: not a
        # setting the user can change, so it is a system error.
        return AirbyteTracedException(
            message=str(self), internal_message=str(self), failure_type=FailureType.system_error
        )


class CatalogError(Exception):
    """The configured catalog asks for something this destination cannot write; the user fixes it
    in the connection's settings (stream prefix, bucket path, namespace mapping)."""

    def traced(self) -> AirbyteTracedException:
        return AirbyteTracedException(
            message=str(self), internal_message=str(self), failure_type=FailureType.config_error
        )
