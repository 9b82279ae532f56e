"""The storage layer: the only module that talks to boto3 and smart_open.

It builds the S3 client (static keys, an assumed role whose credentials refresh themselves, or the
default chain), turns botocore errors into `S3Failure`s, and owns the life of one object upload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore.config import Config
from smart_open.s3 import MultipartWriter

from destination_s3.config import (
    AccessKeyCredentials,
    Credentials,
    RoleCredentials,
    S3Location,
)
from destination_s3.errors import S3Failure, is_config_error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("airbyte")

# smart_open logs every part at INFO; that would flood the platform's log with LOG messages.
logging.getLogger("smart_open").setLevel(logging.WARNING)

ROLE_SESSION_NAME = "tarsal-destination-s3"
ROLE_SESSION_SECONDS = 3600

# botocore's "standard" retry mode retries exactly the transient failures: throttling
# (SlowDown, Throttling…), 5xx, RequestTimeout, and connection errors, with jittered backoff.
# Everything else (AccessDenied, NoSuchBucket, …) surfaces at once.
RETRY_POLICY = {"mode": "standard", "max_attempts": 8}

T = TypeVar("T")


def _client_config(location: S3Location, max_pool_connections: int) -> Config:
    s3_options: dict[str, Any] = {}
    if location.endpoint:
        # S3-compatible stores (MinIO, R2, a local server) rarely resolve bucket subdomains.
        s3_options["addressing_style"] = "path"
    return Config(
        region_name=location.region,
        retries=RETRY_POLICY,  # type: ignore[arg-type]
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=120,
        tcp_keepalive=True,
        s3=s3_options,  # type: ignore[arg-type]
    )


class _AssumedRoleProvider(botocore.credentials.CredentialProvider):
    """Gives a session the assumed role's credentials, refreshed by botocore before they expire."""

    METHOD = "destination-s3-assume-role"
    CANONICAL_NAME = "destination-s3-assume-role"

    def __init__(self, credentials: botocore.credentials.RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> botocore.credentials.RefreshableCredentials:
        return self._credentials


def _assume_role(location: S3Location, role: RoleCredentials) -> botocore.session.Session:
    base_session = boto3.Session()
    sts = base_session.client(
        "sts",
        region_name=location.region,
        endpoint_url=location.endpoint,
        config=Config(retries=RETRY_POLICY),  # type: ignore[arg-type]
    )

    def fetch() -> dict[str, str]:
        request: dict[str, Any] = {
            "RoleArn": role.role_arn,
            "RoleSessionName": ROLE_SESSION_NAME,
            "DurationSeconds": ROLE_SESSION_SECONDS,
        }
        if role.external_id:
            request["ExternalId"] = role.external_id
        issued = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }

    try:
        refreshable = botocore.credentials.RefreshableCredentials.create_from_metadata(
            metadata=fetch(), refresh_using=fetch, method=_AssumedRoleProvider.METHOD
        )
    except Exception as exc:
        raise StorageError(describe_error(exc, f"sts:AssumeRole on {role.role_arn}")) from exc
    session = botocore.session.Session()
    resolver = session.get_component("credential_provider")
    resolver.insert_before("env", _AssumedRoleProvider(refreshable))
    return session


def build_s3_client(
    location: S3Location, credentials: Credentials, max_pool_connections: int = 16
) -> S3Client:
    """An S3 client for the bucket's region and endpoint, authenticated as configured."""
    config = _client_config(location, max_pool_connections)
    if isinstance(credentials, AccessKeyCredentials):
        session = boto3.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
        )
    elif isinstance(credentials, RoleCredentials):
        session = boto3.Session(botocore_session=_assume_role(location, credentials))
    else:
        session = boto3.Session()
    return session.client("s3", endpoint_url=location.endpoint, config=config)


class StorageError(Exception):
    """An S3 or STS call failed; `failure` says which call, why, and whose fault it is."""

    def __init__(self, failure: S3Failure) -> None:
        super().__init__(f"{failure.action}: {failure.code} {failure.detail}".strip())
        self.failure = failure


def describe_error(exc: BaseException, action: str) -> S3Failure:
    """Describe a boto3/smart_open exception without quoting anything secret."""
    # smart_open wraps a failed CreateMultipartUpload in a ValueError; the ClientError is its cause.
    while not isinstance(exc, botocore.exceptions.ClientError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(error.get("Code") or "")
        detail = str(error.get("Message") or "")
        if not code and status:
            code = f"HTTP {status}"
        return S3Failure(action, code, detail, is_config_error_code(code, status))
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return S3Failure(action, "NoCredentials", "no AWS credentials were found", True)
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return S3Failure(action, "EndpointConnectionError", str(exc), True)
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return S3Failure(action, type(exc).__name__, str(exc), False)
    return S3Failure(action, type(exc).__name__, str(exc), False)


def call(action: str, fn: Callable[[], T]) -> T:
    """Run one storage call, turning any failure into a StorageError naming `action`."""
    try:
        return fn()
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(describe_error(exc, action)) from exc


class Bucket:
    """The bucket-level operations the connector needs, on one client."""

    def __init__(self, client: S3Client, name: str) -> None:
        self.client = client
        self.name = name

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def region(self) -> str:
        answer = call(
            f"s3:GetBucketLocation on s3://{self.name}",
            lambda: self.client.get_bucket_location(Bucket=self.name),
        )
        # us-east-1 answers with an empty constraint; "EU" is the legacy name of eu-west-1.
        constraint = answer.get("LocationConstraint") or "us-east-1"
        return "eu-west-1" if constraint == "EU" else constraint

    def list_keys(
        self, prefix: str, limit: int | None = None, delimiter: str | None = None
    ) -> Iterator[str]:
        """Keys under `prefix`, in key order; `limit` stops after that many; with `delimiter`,
        only the keys directly under `prefix` (nothing in sub-folders)."""
        action = f"s3:ListBucket on {self.url(prefix)}"
        paginator = self.client.get_paginator("list_objects_v2")
        request: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix}
        if limit:
            request["PaginationConfig"] = {"MaxItems": limit, "PageSize": min(limit, 1000)}
        if delimiter:
            request["Delimiter"] = delimiter
        pages = paginator.paginate(**request)
        iterator = iter(pages)
        while True:
            page = call(action, lambda: next(iterator, None))
            if page is None:
                return
            for item in page.get("Contents", []):
                yield item["Key"]

    def put_object(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> None:
        """One-request upload; with `if_absent`, S3 refuses (412) to replace an existing object."""
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        call(
            f"s3:PutObject on {self.url(key)}",
            lambda: self.client.put_object(
                Bucket=self.name,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata or {},
                **extra,
            ),
        )

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete keys in batches of 1,000; any per-key error fails the whole call."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            action = f"s3:DeleteObject on {self.url(batch[0])}"
            answer = call(
                action,
                lambda batch=batch: self.client.delete_objects(  # type: ignore[misc]
                    Bucket=self.name,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                ),
            )
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                code = str(first.get("Code", ""))
                raise StorageError(
                    S3Failure(
                        f"s3:DeleteObject on {self.url(str(first.get('Key', batch[0])))}",
                        code,
                        str(first.get("Message", "")),
                        is_config_error_code(code, None),
                    )
                )


class ObjectUpload:
    """One object's upload: parts while it grows, then complete, or abort on failure.

    An object that never fills a part is sent with a single PutObject when completed (one request
    instead of three). Larger ones go through smart_open's MultipartWriter. Every completion is
    conditional (If-None-Match: *), so an existing object is never replaced. Not thread-safe: the
    caller runs one object's calls one after another.
    """

    def __init__(
        self, bucket: Bucket, key: str, part_size: int, content_type: str, metadata: dict[str, str]
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.content_type = content_type
        self.metadata = metadata
        self.bytes_written = 0
        self._multipart: MultipartWriter | None = None
        self.finished = False

    def write(self, chunk: bytes) -> None:
        """Add bytes; a full part goes to S3 now, the rest waits in smart_open's part buffer."""
        action = f"s3:PutObject on {self.bucket.url(self.key)}"
        if self._multipart is None:
            self._multipart = call(action, self._open_multipart)
        multipart = self._multipart
        call(action, lambda: multipart.write(chunk))
        self.bytes_written += len(chunk)

    def complete(self, tail: bytes) -> None:
        """Write the last bytes and make the object visible. Raises StorageError on failure."""
        action = f"s3:PutObject on {self.bucket.url(self.key)}"
        if self._multipart is None:
            self.bucket.put_object(self.key, tail, self.content_type, self.metadata, if_absent=True)
        else:
            multipart = self._multipart
            if tail:
                call(action, lambda: multipart.write(tail))
            call(action, multipart.close)
        self.bytes_written += len(tail)
        self.finished = True

    def abort(self) -> None:
        """Drop the upload so no part is left behind; safe to call twice or after complete."""
        if self.finished:
            return
        self.finished = True
        if self._multipart is not None:
            try:
                self._multipart.terminate()
            except Exception as exc:  # the sync is failing already; report, don't mask it
                logger.warning("could not abort the upload of %s: %s", self.key, exc)

    def _open_multipart(self) -> MultipartWriter:
        return MultipartWriter(
            self.bucket.name,
            self.key,
            part_size=self.part_size,
            client=self.bucket.client,
            client_kwargs={
                "S3.Client.create_multipart_upload": {
                    "ContentType": self.content_type,
                    "Metadata": self.metadata,
                },
                "S3.Client.complete_multipart_upload": {"IfNoneMatch": "*"},
            },
        )
