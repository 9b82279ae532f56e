"""The storage layer against the real local S3 server: an existing object is never replaced."""

from __future__ import annotations

import pytest

from destination_s3.config import MIB, AccessKeyCredentials, S3Location
from destination_s3.s3_client import RetryPolicy
from destination_s3.storage import Bucket, StorageError, open_bucket
from destination_s3.upload import ObjectUpload
from integration_tests.s3_server import MotoServer


def _bucket(s3: MotoServer, name: str) -> Bucket:
    admin = s3.ensure_admin()
    location = S3Location(bucket=name, region="us-east-1", path="", endpoint=s3.endpoint)
    credentials = AccessKeyCredentials(admin.access_key_id, admin.secret_access_key)
    return open_bucket(location, credentials, RetryPolicy())


@pytest.mark.parametrize("size", [10, 6 * MIB], ids=["single request", "multipart"])
def test_completing_an_upload_never_replaces_an_existing_object(
    s3: MotoServer, bucket: str, size: int
) -> None:
    s3.put_object(bucket, "users/2026_11_29_1_0.jsonl", b"already here\n")
    upload = ObjectUpload(
        _bucket(s3, bucket), "users/2026_11_29_1_0.jsonl", "application/jsonl", {}
    )
    body = b"x" * size
    with pytest.raises(StorageError) as raised:
        if size > 5 * MIB:
            upload.write(body[: 5 * MIB])
            upload.complete(body[5 * MIB :])
        else:
            upload.complete(body)
    upload.abort()

    assert raised.value.failure.code == "PreconditionFailed"
    assert raised.value.failure.action.startswith("s3:PutObject")
    assert raised.value.failure.action.endswith(
        " on s3://" + bucket + "/users/2026_11_29_1_0.jsonl"
    )
    assert s3.read_object(bucket, "users/2026_11_29_1_0.jsonl") == b"already here\n"
    assert s3.list_multipart_uploads(bucket) == []
