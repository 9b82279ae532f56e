"""The SSE request arguments each `encryption` setting asks S3 for."""

from __future__ import annotations

from typing import Any

import pytest

from destination_s3.encryption import Encryption, EncryptionType, parse_encryption


@pytest.mark.parametrize(
    ("raw", "args"),
    [
        (None, {}),
        ({"encryption_type": "none"}, {}),
        ({"encryption_type": "SSE-S3"}, {"ServerSideEncryption": "AES256"}),
        ({"encryption_type": "SSE-KMS"}, {"ServerSideEncryption": "aws:kms"}),
        (
            {"encryption_type": "SSE-KMS", "kms_key_id": "alias/data", "bucket_key_enabled": True},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/data",
             "BucketKeyEnabled": True},
        ),
    ],
)  # fmt: skip
def test_request_arguments(raw: dict[str, Any] | None, args: dict[str, Any]) -> None:
    assert parse_encryption(raw).request_args() == args


def test_only_sse_kms_etags_are_not_md5() -> None:
    assert Encryption().etag_is_md5 and Encryption(EncryptionType.SSE_S3).etag_is_md5
    assert not Encryption(EncryptionType.SSE_KMS).etag_is_md5
