"""The connection check: proves the configured credentials can do what a sync does.

It needs exactly the least-privilege policy (s3:GetBucketLocation, s3:ListBucket, s3:PutObject) and
never raises: every failure becomes a message naming the bucket, the action, the AWS error code
and what to fix.
"""

from __future__ import annotations

import re

from destination_s3.config import ConnectorConfig
from destination_s3.s3_client import RetryPolicy
from destination_s3.storage import StorageError, open_bucket

# One fixed key, so repeated checks leave at most one object behind.
PROBE_NAME = "_tarsal_connection_check.txt"
PROBE_BODY = b"Written by the Tarsal S3 destination's connection check. Safe to delete.\n"

_AWS_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d")


def probe_key(bucket_path: str) -> str:
    return f"{bucket_path}/{PROBE_NAME}" if bucket_path else PROBE_NAME


def run_check(config: ConnectorConfig) -> tuple[bool, str]:
    """(succeeded, message) — never raises."""
    location = config.location
    try:
        bucket = open_bucket(location, config.credentials, RetryPolicy(), config.encryption)
        actual_region = bucket.region()
        # S3-compatible stores answer with names like "auto": only AWS region names are compared.
        if _AWS_REGION.fullmatch(actual_region) and actual_region != location.region:
            return False, (
                f"Bucket '{location.bucket}' is in region {actual_region}, but S3 Bucket Region is "
                f"set to {location.region}. To fix: set S3 Bucket Region to {actual_region}."
            )
        folder = f"{location.path}/" if location.path else ""
        list(bucket.list_keys(folder, limit=1))
        key = probe_key(location.path)
        bucket.put_object(key, PROBE_BODY, "text/plain")
    except StorageError as error:
        return False, error.failure.sentence(location.bucket)
    except Exception as error:  # the check reports, it never crashes
        return False, f"Could not check bucket '{location.bucket}': {type(error).__name__}: {error}"
    return True, (
        f"Connected to s3://{location.bucket}/{folder} in {actual_region}: "
        f"GetBucketLocation, ListBucket and PutObject ({bucket.url(key)}) succeeded."
    )
