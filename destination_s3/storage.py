"""The storage layer: with s3_client.py, the only code that talks to botocore (boto3's core).

`Bucket` is the set of bucket operations a sync needs; every call goes through `Bucket.call`, which
turns any failure into a `StorageError` naming the action, the S3 code and whose fault it is.
`ObjectUpload` (upload.py) owns the life of one object.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.exceptions

from destination_s3.config import Credentials, RoleCredentials, S3Location
from destination_s3.encryption import Encryption
from destination_s3.errors import S3Failure, is_config_error_code
from destination_s3.s3_client import (
    RetryPolicy,
    assumed_role_session,
    client_session,
    crc32_checksum,
    s3_client,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("airbyte")

T = TypeVar("T")

LIFECYCLE_ADVICE = (
    "allow s3:AbortMultipartUpload (and s3:ListBucketMultipartUploads) to the connector, or add "
    "a lifecycle rule that aborts incomplete multipart uploads after a day"
)


class StorageError(Exception):
    """An S3 or STS call failed; `failure` says which call, why, and whose fault it is."""

    def __init__(self, failure: S3Failure) -> None:
        super().__init__(f"{failure.action}: {failure.code} {failure.detail}".strip())
        self.failure = failure


_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
)


def describe_error(
    exc: BaseException, action: str, endpoint: str | None = None, reached: bool = False
) -> S3Failure:
    """Describe a boto3 exception without quoting anything secret.

    A connection failure before S3 ever answered is most likely a wrong endpoint or a blocked
    network (config_error); once S3 has answered, it is an outage (system_error).
    """
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(error.get("Code") or "")
        detail = str(error.get("Message") or "")
        is_config = is_config_error_code(code, status)
        # botocore names a code-less error by its status ("403"): say that it is a status.
        if (not code or code.isdigit()) and status:
            code = f"HTTP {status}"
        retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        return S3Failure(action, code, detail, is_config, answered_at_once=not retried)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return S3Failure(action, "NoCredentials", "no AWS credentials were found", True)
    if isinstance(exc, _CONNECTION_ERRORS):
        where = endpoint or "the AWS S3 endpoint"
        detail = f"{where} could not be reached: {exc}"
        return S3Failure(action, "EndpointUnreachable", detail, not reached)
    return S3Failure(action, type(exc).__name__, str(exc), False)


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str  # without quotes


def md5_etag(body: bytes) -> str:
    """The ETag S3 gives an object stored by one unencrypted (or SSE-S3) PutObject."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


class Bucket:
    """The bucket-level operations the connector needs.

    `client` does the work with the connector's retry policy; `quick_client` serves the
    best-effort calls of a failing or cancelled sync, which must finish within a short grace.
    """

    def __init__(
        self,
        client: S3Client,
        name: str,
        make_quick_client: Callable[[], S3Client] | None = None,
        encryption: Encryption | None = None,
    ) -> None:
        self.client = client
        # ChecksumCRC32 on every body, unless the user lowered botocore's request checksums to
        # the ones S3 requires (AWS_REQUEST_CHECKSUM_CALCULATION=when_required, for a store that
        # refuses them): then no body carries one, as botocore itself would send them.
        config = getattr(client.meta, "config", None)
        calculation = getattr(config, "request_checksum_calculation", "when_supported")
        self._checksums = calculation != "when_required"
        # Made on first use, by a failing or cancelled sync: a client costs every sync's start
        # about 0.05 s of CPU, and most syncs never need this one.
        self._make_quick_client = make_quick_client
        self._quick_client: S3Client | None = None
        self._quick_client_lock = threading.Lock()
        self.name = name
        # Every object this bucket writes asks for it (data, markers, the check's probe).
        self.encryption = encryption or Encryption()
        # Set once any call succeeded: later connection failures are outages, not bad settings.
        self.reached = False

    @property
    def quick_client(self) -> S3Client:
        with self._quick_client_lock:
            if self._quick_client is None:
                self._quick_client = self.client
                if self._make_quick_client is not None:
                    try:
                        self._quick_client = self._make_quick_client()
                    except Exception as exc:  # best effort: the sync's own client will do
                        logger.warning("no quick S3 client (%s); aborting with the main one", exc)
            return self._quick_client

    def checksum_args(self, body: bytes) -> dict[str, Any]:
        """The request argument with `body`'s CRC32, which S3 checks before storing it."""
        return {"ChecksumCRC32": crc32_checksum(body)} if self._checksums else {}

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def call(self, action: str, fn: Callable[[], T]) -> T:
        """Run one storage call, turning any failure into a StorageError naming `action`."""
        try:
            result = fn()
        except StorageError:
            raise
        except Exception as exc:
            endpoint = self.client.meta.endpoint_url
            raise StorageError(describe_error(exc, action, endpoint, self.reached)) from exc
        self.reached = True
        return result

    def region(self) -> str:
        answer = self.call(
            f"s3:GetBucketLocation on s3://{self.name}",
            lambda: self.client.get_bucket_location(Bucket=self.name),
        )
        # us-east-1 answers with an empty constraint; "EU" is the legacy name of eu-west-1.
        constraint = answer.get("LocationConstraint") or "us-east-1"
        return "eu-west-1" if constraint == "EU" else constraint

    def list_objects(
        self, prefix: str, limit: int | None = None, delimiter: str | None = None
    ) -> Iterator[StoredObject]:
        """Objects under `prefix`, in key order; `limit` stops after that many; with `delimiter`,
        only the objects directly under `prefix` (nothing in sub-folders)."""
        action = f"s3:ListBucket on {self.url(prefix)}"
        paginator = self.client.get_paginator("list_objects_v2")
        request: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix}
        if limit:
            request["PaginationConfig"] = {"MaxItems": limit, "PageSize": min(limit, 1000)}
        if delimiter:
            request["Delimiter"] = delimiter
        pages = iter(paginator.paginate(**request))
        while True:
            page = self.call(action, lambda: next(pages, None))
            if page is None:
                return
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"], item["Size"], item["ETag"].strip('"'))

    def list_keys(
        self, prefix: str, limit: int | None = None, delimiter: str | None = None
    ) -> Iterator[str]:
        for stored in self.list_objects(prefix, limit, delimiter):
            yield stored.key

    def holds(self, key: str, size: int, etag: str) -> StoredObject | None:
        """The object at `key` if it has exactly this size and ETag (ListBucket is all it needs).

        Under SSE-KMS, S3's ETag is not the MD5 of the bytes: size alone must do (the key is
        unique to this process, so another writer of the same key and size is far-fetched)."""
        for stored in self.list_objects(key, limit=1):
            same_etag = stored.etag == etag or not self.encryption.etag_is_md5
            if stored.key == key and stored.size == size and same_etag:
                return stored
        return None

    def put_object(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> str:
        """One-request upload; returns the object's ETag. With `if_absent`, S3 refuses (412) to
        replace an existing object.

        When S3 executed a conditional PutObject but its answer was lost, botocore's retry gets
        412 PreconditionFailed for our own object: if the key holds exactly our bytes, that is
        success.
        """
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            answer = self.call(
                f"s3:PutObject on {self.url(key)}",
                lambda: self.client.put_object(
                    Bucket=self.name,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    Metadata=metadata or {},
                    **self.checksum_args(body),
                    **self.encryption.request_args(),
                    **extra,
                ),
            )
        except StorageError as error:
            if not (if_absent and error.failure.code == "PreconditionFailed"):
                raise
            stored = self.holds(key, len(body), md5_etag(body))
            if stored is None:
                raise
            logger.info("PutObject of %s was retried after S3 stored it: kept", self.url(key))
            return stored.etag
        return str(answer.get("ETag", "")).strip('"')

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete keys in batches of 1,000; any per-key error fails the whole call."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            answer = self.call(
                f"s3:DeleteObject on {self.url(batch[0])}",
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

    def abort_upload(self, key: str, upload_id: str, quick: bool = False) -> None:
        client = self.quick_client if quick else self.client
        try:
            self.call(
                f"s3:AbortMultipartUpload on {self.url(key)}",
                lambda: client.abort_multipart_upload(
                    Bucket=self.name, Key=key, UploadId=upload_id
                ),
            )
        except StorageError as error:
            # A retried abort whose first attempt went through finds nothing left to abort.
            if error.failure.code != "NoSuchUpload":
                raise

    def abort_other_uploads(self, key: str, keep: str | None, quick: bool = False) -> bool:
        """Abort the uploads of `key` other than `keep`; True when none is left open.

        A CreateMultipartUpload that S3 executed but whose answer was lost leaves an upload
        behind when botocore retries it (or gives up). Only warns when the permissions (or an
        unreachable S3) do not allow the clean-up."""
        client = self.quick_client if quick else self.client
        try:
            answer = self.call(
                f"s3:ListBucketMultipartUploads on {self.url(key)}",
                lambda: client.list_multipart_uploads(Bucket=self.name, Prefix=key),
            )
            orphans = [
                upload["UploadId"]
                for upload in answer.get("Uploads", [])
                if upload["Key"] == key and upload["UploadId"] != keep
            ]
            for upload_id in orphans:
                self.abort_upload(key, upload_id, quick)
        except StorageError as error:
            logger.warning(
                "A CreateMultipartUpload of %s was retried or lost, so S3 may hold an open upload "
                "that will never complete, and it could not be cleaned up (%s). To fix: %s.",
                self.url(key),
                error,
                LIFECYCLE_ADVICE,
            )
            return False
        return True


def open_bucket(
    location: S3Location,
    credentials: Credentials,
    policy: RetryPolicy,
    encryption: Encryption | None = None,
) -> Bucket:
    """The bucket of `location`, with clients authenticated as configured."""
    role_session = None
    if isinstance(credentials, RoleCredentials):
        action = f"sts:AssumeRole on {credentials.role_arn}"
        try:
            role_session = assumed_role_session(location, credentials, policy)
        except Exception as exc:
            raise StorageError(describe_error(exc, action, location.endpoint)) from exc
    session = client_session(credentials, role_session)
    return Bucket(
        s3_client(session, location, policy),
        location.bucket,
        functools.partial(s3_client, session, location, policy.quick()),
        encryption,
    )
