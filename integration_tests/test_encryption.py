"""Server-side encryption at the storage layer, against the local S3 server (which stores the
SSE settings of each object and serves KMS): every object asks for the configured encryption."""

from __future__ import annotations

from typing import Any

import pytest

from destination_s3.config import MIB, AccessKeyCredentials, S3Location
from destination_s3.encryption import Encryption, EncryptionType
from destination_s3.s3_client import RetryPolicy
from destination_s3.storage import Bucket, open_bucket
from destination_s3.upload import ObjectUpload
from integration_tests.s3_server import MotoServer


def _bucket(s3: MotoServer, name: str, encryption: Encryption) -> Bucket:
    admin = s3.ensure_admin()
    location = S3Location(bucket=name, region="us-east-1", path="", endpoint=s3.endpoint)
    credentials = AccessKeyCredentials(admin.access_key_id, admin.secret_access_key)
    return open_bucket(location, credentials, RetryPolicy(), encryption)


def _sse(s3: MotoServer, bucket: str, key: str) -> dict[str, Any]:
    head = s3.admin_client("s3").head_object(Bucket=bucket, Key=key)
    return {name: head.get(name) for name in ("ServerSideEncryption", "SSEKMSKeyId")}


def test_sse_kms_with_a_key_on_single_and_multipart_objects(s3: MotoServer, bucket: str) -> None:
    key_arn = s3.admin_client("kms").create_key()["KeyMetadata"]["Arn"]
    target = _bucket(s3, bucket, Encryption(EncryptionType.SSE_KMS, key_arn))
    target.put_object("small.jsonl", b"{}\n", "application/jsonl", if_absent=True)
    upload = ObjectUpload(target, "large.jsonl", "application/jsonl", {})
    upload.write(b"x" * (5 * MIB))
    upload.complete(b"tail\n")
    for key in ("small.jsonl", "large.jsonl"):
        sse = _sse(s3, bucket, key)
        assert sse["ServerSideEncryption"] == "aws:kms", (key, sse)
        assert sse["SSEKMSKeyId"] and str(sse["SSEKMSKeyId"]).endswith(key_arn.split("/")[-1])


@pytest.mark.parametrize(
    ("encryption", "expected"),
    [(Encryption(EncryptionType.SSE_S3), "AES256"), (Encryption(), None)],
)
def test_sse_s3_and_the_bucket_default(
    s3: MotoServer, bucket: str, encryption: Encryption, expected: str | None
) -> None:
    target = _bucket(s3, bucket, encryption)
    target.put_object("marker.marker", b"", "application/octet-stream")
    assert _sse(s3, bucket, "marker.marker")["ServerSideEncryption"] == expected
