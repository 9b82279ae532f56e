"""The SSE request arguments each `encryption` setting asks S3 for."""

from __future__ import annotations

from typing import Any

import pytest

from destination_s3.encryption import Encryption, EncryptionType, parse_encryption
from destination_s3.validation import ConfigError, validate_config


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


BASE = {
    "s3_bucket_name": "bucket-x",
    "credentials": {"auth_type": "default_chain"},
    "format": {"format_type": "JSONL"},
}


@pytest.mark.parametrize(
    ("encryption", "problem"),
    [
        ({"encryption_type": "SSE-C"},
         'encryption.encryption_type must be one of "none", "SSE-S3", "SSE-KMS"; got "SSE-C".'),
        ({"encryption_type": "SSE-KMS", "bucket_key_enabled": "yes"},
         "encryption.bucket_key_enabled (S3 Bucket Key) must be true or false, not a string."),
        ({}, 'encryption.encryption_type is required and must be one of "none", "SSE-S3", '
             '"SSE-KMS".'),
    ],
)  # fmt: skip
def test_a_wrong_encryption_setting_is_refused_naming_the_field(
    encryption: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        validate_config({**BASE, "encryption": encryption})
    assert raised.value.problems == [problem]


def test_the_setting_reaches_the_typed_config() -> None:
    kms = {"encryption_type": "SSE-KMS", "kms_key_id": "alias/data", "bucket_key_enabled": False}
    config = validate_config({**BASE, "encryption": kms}).config
    assert config.encryption == Encryption(EncryptionType.SSE_KMS, "alias/data", False)
    assert validate_config(BASE).config.encryption == Encryption()
