"""Server-side encryption of every object the connector writes (data, markers, the check's probe).

`none` leaves it to the bucket's default encryption (S3 encrypts every new object with SSE-S3 at
least). SSE-KMS needs `kms:GenerateDataKey` on the key besides `s3:PutObject`; `check` writes its
probe with the same settings, so a missing grant shows there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class EncryptionType(enum.Enum):
    NONE = "none"
    SSE_S3 = "SSE-S3"
    SSE_KMS = "SSE-KMS"


@dataclass(frozen=True)
class Encryption:
    type: EncryptionType = EncryptionType.NONE
    kms_key_id: str | None = None  # an ARN or `alias/…`; None: the AWS-managed key aws/s3
    bucket_key_enabled: bool | None = None  # None: the bucket's setting

    def request_args(self) -> dict[str, Any]:
        """Arguments of PutObject / CreateMultipartUpload that ask for this encryption."""
        if self.type is EncryptionType.NONE:
            return {}
        if self.type is EncryptionType.SSE_S3:
            return {"ServerSideEncryption": "AES256"}
        args: dict[str, Any] = {"ServerSideEncryption": "aws:kms"}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        if self.bucket_key_enabled is not None:
            args["BucketKeyEnabled"] = self.bucket_key_enabled
        return args

    @property
    def etag_is_md5(self) -> bool:
        """S3 gives an SSE-KMS object an ETag that is not the MD5 of its bytes."""
        return self.type is not EncryptionType.SSE_KMS

    def describe(self) -> str:
        if self.type is not EncryptionType.SSE_KMS:
            return str(self.type.value)
        return f"SSE-KMS({self.kms_key_id or 'aws/s3'})"


def parse_encryption(raw: Any) -> Encryption:
    """From the config's `encryption` object (already validated against spec.json)."""
    if not raw:
        return Encryption()
    kind = EncryptionType(raw.get("encryption_type", "none"))
    if kind is not EncryptionType.SSE_KMS:
        return Encryption(kind)
    return Encryption(kind, raw.get("kms_key_id") or None, raw.get("bucket_key_enabled"))
