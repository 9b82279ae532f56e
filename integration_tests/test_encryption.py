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
from integration_tests.connector import (
    MakeConfig,
    configured_catalog,
    record,
    run_check,
    run_write,
)
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


def test_check_and_write_ask_for_the_configured_encryption(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    key_arn = s3.admin_client("kms").create_key()["KeyMetadata"]["Arn"]
    sse_kms = {"encryption_type": "SSE-KMS", "kms_key_id": key_arn}
    config = make_config(bucket, encryption=sse_kms)
    check = run_check(config)
    assert check.connection_status() is not None
    assert check.connection_status()["status"] == "SUCCEEDED", check.describe()
    catalog = configured_catalog(["users"], generation_id=2, minimum_generation_id=0)
    run_write(config, catalog, [record("users", {"id": 1})]).assert_success()
    keys = s3.list_keys(bucket)
    # The probe, the data object, its generation marker and the sync's manifest.
    assert len(keys) == 4 and any(key.endswith(".marker") for key in keys), keys
    assert any(key.startswith("_tarsal_manifests/") for key in keys), keys
    for key in keys:
        assert _sse(s3, bucket, key)["ServerSideEncryption"] == "aws:kms", key
    assert "encryption=SSE-KMS(" in run_write(config, catalog, []).log_text()
