"""An in-memory, thread-safe S3 client: the calls `Bucket` and `ObjectUpload` make, answered as S3
does (ETags, conditional writes, multipart rules), failing by rule with real botocore exceptions."""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError

Answer = dict[str, Any]
Method = Callable[..., Answer]
ENDPOINT = "https://s3.fake.test"
MIN_PART = 5 * 1024 * 1024
BLOCK_LIMIT = 30.0  # a blocked call outlives a forgotten release by no more than this


def client_error(code: str, status: int, operation: str) -> ClientError:
    error = {"Code": code, "Message": f"fake {code}"}
    metadata = {"HTTPStatusCode": status, "RetryAttempts": 0}
    return ClientError({"Error": error, "ResponseMetadata": metadata}, operation)  # type: ignore[typeddict-item]


def md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    """S3's ETag of a multipart object: MD5 of the parts' binary MD5s, "-", the part count."""
    digests = b"".join(hashlib.md5(part, usedforsecurity=False).digest() for part in parts)
    return f"{md5(digests)}-{len(parts)}"


def _check_crc32(body: bytes, checksum: str | None, operation: str) -> None:
    """S3 refuses a body whose CRC32 is not the one the request names."""
    if checksum is not None:
        actual = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        if checksum != actual:
            raise client_error("BadDigest", 400, operation)


def _answer(retry_attempts: int = 0, **fields: Any) -> Answer:
    return {**fields, "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": retry_attempts}}


def operation(name: str, key: str = "Key") -> Callable[[Method], Method]:
    """An S3 call: the method's body is its effect, which `_call` runs unless a rule says no."""

    def wrap(method: Method) -> Method:
        @functools.wraps(method)
        def call(self: FakeS3Client, **request: Any) -> Answer:
            effect = functools.partial(method, self, **request)
            return self._call(name, request["Bucket"], request.get(key, ""), effect)

        return call

    return wrap


@dataclass
class Rule:
    """For the calls of `operation` on keys starting with `key`, counted from 1: the `nth`, all
    `after` the Nth, or all. `release`: wait for it; `executed`: take effect, then raise `error`."""

    operation: str
    key: str = ""
    nth: int | None = None
    after: int | None = None
    error: Callable[[], Exception] | None = None
    executed: bool = False
    release: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    seen: int = 0

    def fires(self) -> bool:
        return self.seen == self.nth if self.nth is not None else self.seen > (self.after or 0)


@dataclass
class Stored:
    body: bytes
    etag: str  # unquoted
    attrs: dict[str, Any] = field(default_factory=dict)  # ContentType, Metadata


@dataclass
class OpenUpload:
    key: str
    attrs: dict[str, Any]
    parts: dict[int, bytes] = field(default_factory=dict)


class FakeS3Client:
    def __init__(self, bucket: str = "bucket", region: str = "us-east-1") -> None:
        self.meta = SimpleNamespace(endpoint_url=ENDPOINT)
        self.bucket, self.region = bucket, region
        self.objects: dict[str, Stored] = {}
        self.uploads: dict[str, OpenUpload] = {}  # by UploadId
        self.calls: list[tuple[str, str]] = []  # (operation, key or prefix) in arrival order
        self.rules: list[Rule] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._retried_creates: list[int] = []

    def fail(self, operation: str, error: Callable[[], Exception], **rule: Any) -> Rule:
        self.rules.append(Rule(operation, error=error, **rule))
        return self.rules[-1]

    def block(self, operation: str, **rule: Any) -> Rule:
        self.rules.append(Rule(operation, release=threading.Event(), **rule))
        return self.rules[-1]

    @property
    def blocked(self) -> bool:  # whether a call is waiting for a release now
        return any(r.release and r.entered.is_set() and not r.release.is_set() for r in self.rules)

    def release_all(self) -> None:
        for rule in self.rules:
            if rule.release is not None:
                rule.release.set()

    def retry_next_create(self, attempts: int = 1) -> None:
        """The next create says RetryAttempts=`attempts`; each lost attempt left an open upload."""
        self._retried_creates.append(attempts)

    def seed(self, key: str, body: bytes = b"") -> None:
        self.objects[key] = Stored(body, md5(body))

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self.objects)

    def open_uploads(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted((upload.key, upload_id) for upload_id, upload in self.uploads.items())

    @operation("PutObject")
    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        IfNoneMatch: str = "",
        ChecksumCRC32: str | None = None,
        **attrs: Any,
    ) -> Answer:
        _check_crc32(Body, ChecksumCRC32, "PutObject")
        if IfNoneMatch == "*" and Key in self.objects:
            raise client_error("PreconditionFailed", 412, "PutObject")
        self.objects[Key] = Stored(bytes(Body), md5(Body), attrs)
        return _answer(ETag=f'"{md5(Body)}"')

    @operation("CreateMultipartUpload")
    def create_multipart_upload(self, *, Bucket: str, Key: str, **attrs: Any) -> Answer:
        attempts = self._retried_creates.pop(0) if self._retried_creates else 0
        for _ in range(attempts + 1):  # the orphans first, ours last
            upload_id = f"upload-{next(self._ids)}"
            self.uploads[upload_id] = OpenUpload(Key, attrs)
        return _answer(attempts, Bucket=Bucket, Key=Key, UploadId=upload_id)

    @operation("UploadPart")
    def upload_part(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        Body: bytes,
        ChecksumCRC32: str | None = None,
    ) -> Answer:
        _check_crc32(Body, ChecksumCRC32, "UploadPart")
        self._upload(Key, UploadId, "UploadPart").parts[PartNumber] = bytes(Body)
        return _answer(ETag=f'"{md5(Body)}"')

    @operation("CompleteMultipartUpload")
    def complete_multipart_upload(
        self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: Any, IfNoneMatch: str = ""
    ) -> Answer:
        name = "CompleteMultipartUpload"
        upload = self._upload(Key, UploadId, name)
        if IfNoneMatch == "*" and Key in self.objects:
            raise client_error("PreconditionFailed", 412, name)
        listed = MultipartUpload["Parts"]
        numbers = [part["PartNumber"] for part in listed]
        if not numbers or numbers != sorted(set(numbers)):
            raise client_error("InvalidPartOrder", 400, name)
        etags = {number: md5(body) for number, body in upload.parts.items()}
        if any(etags.get(part["PartNumber"]) != part["ETag"].strip('"') for part in listed):
            raise client_error("InvalidPart", 400, name)
        bodies = [upload.parts[number] for number in numbers]
        if any(len(body) < MIN_PART for body in bodies[:-1]):
            raise client_error("EntityTooSmall", 400, name)
        self.objects[Key] = Stored(b"".join(bodies), multipart_etag(bodies), upload.attrs)
        del self.uploads[UploadId]
        return _answer(ETag=f'"{self.objects[Key].etag}"', Key=Key)

    @operation("AbortMultipartUpload")
    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> Answer:
        self._upload(Key, UploadId, "AbortMultipartUpload")
        del self.uploads[UploadId]
        return _answer()

    @operation("ListMultipartUploads", key="Prefix")
    def list_multipart_uploads(self, *, Bucket: str, Prefix: str = "") -> Answer:
        found = [{"Key": k, "UploadId": u} for k, u in self.open_uploads() if k.startswith(Prefix)]
        return _answer(Uploads=found) if found else _answer()

    @operation("DeleteObjects", key="")
    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any]) -> Answer:
        keys = [item["Key"] for item in Delete["Objects"]]
        for key in keys:
            self.objects.pop(key, None)
        return _answer() if Delete.get("Quiet") else _answer(Deleted=[{"Key": k} for k in keys])

    @operation("GetBucketLocation", key="")
    def get_bucket_location(self, *, Bucket: str) -> Answer:
        return _answer(LocationConstraint=None if self.region == "us-east-1" else self.region)

    @operation("ListObjectsV2", key="Prefix")
    def list_objects_v2(
        self, *, Bucket: str, Prefix: str = "", Delimiter: str = "", MaxKeys: int = 1000
    ) -> Answer:
        keys = [k for k in sorted(self.objects) if k.startswith(Prefix)]
        if Delimiter:  # sub-folders would be CommonPrefixes, which no caller reads
            keys = [k for k in keys if Delimiter not in k[len(Prefix) :]]
        stored = [(k, self.objects[k]) for k in keys[:MaxKeys]]
        contents = [{"Key": k, "Size": len(s.body), "ETag": f'"{s.etag}"'} for k, s in stored]
        return _answer(Contents=contents, KeyCount=len(stored)) if stored else _answer(KeyCount=0)

    def get_paginator(self, name: str) -> SimpleNamespace:  # list_objects_v2: one page, lazily
        def paginate(*, PaginationConfig: Any = None, **request: Any) -> Iterator[Answer]:
            limit = (PaginationConfig or {}).get("MaxItems", 1000)
            yield self.list_objects_v2(MaxKeys=limit, **request)

        return SimpleNamespace(paginate=paginate)

    def _upload(self, key: str, upload_id: str, operation: str) -> OpenUpload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise client_error("NoSuchUpload", 404, operation)
        return upload

    def _call(self, operation: str, bucket: str, key: str, effect: Callable[[], Answer]) -> Answer:
        with self._lock:
            self.calls.append((operation, key))
            firing = []
            for rule in self.rules:
                if rule.operation == operation and key.startswith(rule.key):
                    rule.seen += 1
                    if rule.fires():
                        firing.append(rule)
                        rule.entered.set()
        for rule in firing:
            if rule.release is not None:
                rule.release.wait(BLOCK_LIMIT)
        error = next((rule.error for rule in firing if rule.error is not None), None)
        if error is not None and not any(rule.executed for rule in firing):
            raise error()
        with self._lock:
            if bucket != self.bucket:
                raise client_error("NoSuchBucket", 404, operation)
            result = effect()
        if error is not None:
            raise error()
        return result
