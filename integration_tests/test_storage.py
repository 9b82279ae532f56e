"""The storage layer against the real local S3 server: an existing object is never replaced."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from destination_s3.config import MIB, AccessKeyCredentials, S3Location
from destination_s3.s3_client import RetryPolicy
from destination_s3.storage import Bucket, StorageError, open_bucket
from destination_s3.upload import ObjectUpload
from integration_tests.s3_server import MotoServer, unique_name


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


@pytest.fixture(scope="module")
def tls_server() -> Iterator[MotoServer]:
    server = MotoServer.start(tls=True)
    try:
        yield server
    finally:
        server.stop()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("over", ["http", "https"])
def test_bodies_go_whole_with_their_crc32(
    over: str, s3: MotoServer, tls_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every body leaves as the bytes it is, in one piece with a Content-Length (no aws-chunked
    stream, no Expect: 100-continue wait), with the CRC32 S3 checks; SHA-256-signed over http
    only, as botocore would do."""
    server = tls_server if over == "https" else s3
    if server.ca_bundle:
        monkeypatch.setenv("AWS_CA_BUNDLE", server.ca_bundle)
    name = server.create_bucket(unique_name("it-bodies"), region="us-east-1")
    bucket = _bucket(server, name)
    sent: list[Any] = []
    bucket.client.meta.events.register(
        "before-send.s3.*", lambda request, **_: sent.append(request)
    )
    small, first, last = b"small object\n", b"a" * (5 * MIB), b"tail\n"
    bucket.put_object("small.jsonl", small, "application/jsonl")
    upload = ObjectUpload(bucket, "large.jsonl", "application/jsonl", {})
    upload.write(first)
    upload.complete(last)

    bodies = [request for request in sent if request.method == "PUT"]
    assert [request.body for request in bodies] == [small, first, last]
    for request in bodies:
        headers = {key.lower(): _text(value) for key, value in request.headers.items()}
        assert type(request.body) is bytes
        assert "expect" not in headers and "transfer-encoding" not in headers
        crc32 = zlib.crc32(request.body).to_bytes(4, "big")
        assert headers["x-amz-checksum-crc32"] == base64.b64encode(crc32).decode()
        signed = hashlib.sha256(request.body).hexdigest()
        assert headers["x-amz-content-sha256"] == (
            "UNSIGNED-PAYLOAD" if over == "https" else signed
        )
    assert server.read_object(name, "small.jsonl") == small
    assert server.read_object(name, "large.jsonl") == first + last


def test_best_effort_calls_use_one_client_with_the_quick_policy(
    s3: MotoServer, bucket: str
) -> None:
    storage = _bucket(s3, bucket)
    quick = storage.quick_client
    assert quick is storage.quick_client and quick is not storage.client
    policy = RetryPolicy().quick()
    assert quick.meta.config.retries == {
        "mode": "standard",
        "total_max_attempts": policy.max_attempts,
    }
    assert quick.meta.config.read_timeout == policy.read_timeout
    assert storage.client.meta.config.retries["total_max_attempts"] == RetryPolicy().max_attempts


def test_bodies_carry_no_checksum_when_the_user_lowers_botocores_checksums(
    s3: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_REQUEST_CHECKSUM_CALCULATION=when_required (for a store that refuses checksums) is
    followed as botocore follows it: no body carries one."""
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    storage = _bucket(s3, bucket)
    sent: list[Any] = []
    storage.client.meta.events.register(
        "before-send.s3.*", lambda request, **_: sent.append(request)
    )
    storage.put_object("small.jsonl", b"small\n", "application/jsonl")
    upload = ObjectUpload(storage, "large.jsonl", "application/jsonl", {})
    upload.write(b"a" * (5 * MIB))
    upload.complete(b"tail\n")

    bodies = [request for request in sent if request.method == "PUT"]
    assert len(bodies) == 3
    for request in bodies:
        assert not any(key.lower().startswith("x-amz-checksum") for key in request.headers)
    assert s3.read_object(bucket, "large.jsonl") == b"a" * (5 * MIB) + b"tail\n"


def test_a_quick_client_that_cannot_be_made_leaves_the_main_one(
    s3: MotoServer, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = _bucket(s3, bucket)

    def cannot() -> Any:
        raise RuntimeError("no memory for a client")

    fallback = Bucket(storage.client, bucket, cannot)
    assert fallback.quick_client is storage.client
    assert fallback.quick_client is storage.client  # decided once
    assert "no quick S3 client (no memory for a client)" in caplog.text
