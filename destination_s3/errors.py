"""A small error taxonomy: what went wrong, in words the user can act on, and whose fault it is.

Every failure that leaves the connector is described by a `Failure` built here, so the mapping
from AWS error codes to Airbyte's failure_type lives in one place. A Failure is plain data: the
`write` command prints it as a TRACE message without the CDK (destination_s3.protocol), and the
CDK path (check, the in-process write) turns it into an AirbyteTracedException.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

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


class FailureType(str, enum.Enum):
    """Whose fault a failure is, with the Airbyte protocol's values (the platform decides on it
    whether to retry the sync and whether to tell the user to change a setting)."""

    CONFIG_ERROR = "config_error"
    SYSTEM_ERROR = "system_error"


@dataclass(frozen=True)
class Failure:
    """A failure as reported in a TRACE message, with the fields of the CDK's
    AirbyteTracedException. `message` None means the CDK's generic sentence; `exception` is what
    the TRACE's stack_trace shows."""

    message: str | None
    internal_message: str | None
    failure_type: FailureType
    exception: BaseException | None = None

    @classmethod
    def unexpected(cls, exception: BaseException) -> Failure:
        """A bug or an unforeseen error: the CDK's AirbyteTracedException.from_exception."""
        return cls(None, str(exception), FailureType.SYSTEM_ERROR, exception)


class Failed(Exception):
    """Raised with a failure that is already described for the user: whoever reports it prints
    `failure` as is."""

    def __init__(self, failure: Failure) -> None:
        # The CDK's AirbyteTracedException reads as its message, or else its internal message.
        super().__init__(failure.message or failure.internal_message or "")
        self.failure = failure


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

    def traced(self, bucket: str, exception: BaseException | None = None) -> Failure:
        """The failure to report (its stack trace is `exception`'s, the StorageError)."""
        message = self.sentence(bucket)
        config_error = self.is_config_error
        failure_type = FailureType.CONFIG_ERROR if config_error else FailureType.SYSTEM_ERROR
        return Failure(message, message, failure_type, exception)


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

    def traced(self) -> Failure:
        # The source or the platform sent something that is not the Airbyte protocol: not a
        # setting the user can change, so it is a system error.
        return Failure(str(self), str(self), FailureType.SYSTEM_ERROR, self)


class CatalogError(Exception):
    """The configured catalog is not one this destination can write: malformed (the platform's
    fault: system_error), or asking for something the user can change in the connection's
    settings (`user_can_fix`: stream prefix, bucket path, namespace mapping)."""

    def __init__(self, message: str, user_can_fix: bool = False) -> None:
        super().__init__(message)
        self.user_can_fix = user_can_fix

    def traced(self) -> Failure:
        failure_type = FailureType.CONFIG_ERROR if self.user_can_fix else FailureType.SYSTEM_ERROR
        return Failure(str(self), str(self), failure_type, self)
