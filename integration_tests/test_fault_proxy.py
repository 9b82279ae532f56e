"""Tests of the fault-injecting proxy itself, seen from real boto3 clients talking to moto.

Clients here never retry unless a test says so (``total_max_attempts=1``: botocore's
``max_attempts`` counts retries, not attempts), so every fault is observed exactly once.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from integration_tests.fault_proxy import FaultProxy, start_proxy
from integration_tests.fault_rules import FaultRule, classify
from integration_tests.s3_server import MotoServer, UserKeys

SESSION = boto3.session.Session()


@pytest.fixture
def proxy(s3: MotoServer) -> Iterator[FaultProxy]:
    with start_proxy(s3.endpoint, seed=0) as started:
        yield started


def client(s3: MotoServer, proxy: FaultProxy, attempts: int = 1, **config: Any) -> Any:
    """An admin S3 client through the proxy, built like ``MotoServer.client``."""
    keys = s3.ensure_admin()
    return SESSION.client(
        "s3",
        endpoint_url=proxy.endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        config=Config(
            connect_timeout=2,
            read_timeout=config.pop("read_timeout", 10),
            retries={"total_max_attempts": attempts, "mode": "standard"},
            **config,
        ),
    )


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def put_chunked(proxy: FaultProxy, path: str, chunks: list[bytes], keys: UserKeys) -> Any:
    """A SigV4-signed PUT sent with ``Transfer-Encoding: chunked`` (botocore never does that)."""
    request = AWSRequest(method="PUT", url=proxy.endpoint + path, data=b"".join(chunks))
    S3SigV4Auth(
        Credentials(keys.access_key_id, keys.secret_access_key), "s3", "us-east-1"
    ).add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("PUT", path, body=iter(chunks), headers=dict(request.headers), encode_chunked=True)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


# -- pass-through ----------------------------------------------------------------------------------


def test_put_get_list_delete_pass_through(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    c = client(s3, proxy)
    c.put_object(Bucket=bucket, Key="a/1.txt", Body=b"one", ContentMD5="+XxdKZQb+xsv2rCHSQargg==")
    c.put_object(Bucket=bucket, Key="a/2.txt", Body=b"two", IfNoneMatch="*")
    assert c.get_object(Bucket=bucket, Key="a/1.txt")["Body"].read() == b"one"
    assert c.head_object(Bucket=bucket, Key="a/2.txt")["ContentLength"] == 3
    listed = c.list_objects_v2(Bucket=bucket, Prefix="a/")["Contents"]
    assert [o["Key"] for o in listed] == ["a/1.txt", "a/2.txt"]
    c.delete_object(Bucket=bucket, Key="a/1.txt")
    assert s3.list_keys(bucket) == ["a/2.txt"]
    assert c.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None
    assert proxy.stats.operations() == [
        "PutObject", "PutObject", "GetObject", "HeadObject", "ListObjectsV2", "DeleteObject",
        "GetBucketLocation",
    ]  # fmt: skip
    assert proxy.stats.faults() == 0 and proxy.stats.errors() == []


def test_multipart_pass_through(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    c = client(s3, proxy)
    upload = c.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    first = b"x" * (5 * 1024 * 1024)
    tags = [
        c.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=n, Body=data)["ETag"]
        for n, data in ((1, first), (2, b"tail"))
    ]
    assert [u["UploadId"] for u in c.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    parts = [{"PartNumber": n, "ETag": tag} for n, tag in enumerate(tags, 1)]
    c.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert s3.read_object(bucket, "big") == first + b"tail"
    doomed = c.create_multipart_upload(Bucket=bucket, Key="doomed")["UploadId"]
    c.abort_multipart_upload(Bucket=bucket, Key="doomed", UploadId=doomed)
    assert s3.list_multipart_uploads(bucket) == []
    assert proxy.stats.operations() == [
        "CreateMultipartUpload", "UploadPart", "UploadPart", "ListMultipartUploads",
        "CompleteMultipartUpload", "CreateMultipartUpload", "AbortMultipartUpload",
    ]  # fmt: skip


def test_signatures_and_chunked_bodies_survive_iam_enforcement(
    s3: MotoServer, bucket: str, proxy: FaultProxy
) -> None:
    admin = s3.ensure_admin()
    s3.enforce_iam(True)
    client(s3, proxy).put_object(Bucket=bucket, Key="plain", Body=b"signed")
    chunks = [b"hello ", b"chunked ", b"world"]
    status, _ = put_chunked(proxy, f"/{bucket}/chunked", chunks, admin)
    assert status == 200
    assert s3.read_object(bucket, "chunked") == b"hello chunked world"
    assert s3.read_object(bucket, "plain") == b"signed"
    forged = UserKeys(admin.access_key_id, "not-the-secret", admin.arn)
    status, body = put_chunked(proxy, f"/{bucket}/forged", chunks, forged)
    assert (status, b"SignatureDoesNotMatch" in body) == (403, True)  # moto did check
    assert proxy.stats.seen("PutObject") == 3


def test_keep_alive_connection_is_reused(bucket: str, proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.connect()
    first_socket = conn.sock
    for _ in range(3):
        conn.request("GET", f"/{bucket}?list-type=2")
        response = conn.getresponse()
        assert response.status == 200 and b"ListBucketResult" in response.read()
        assert conn.sock is first_socket  # http.client would have dropped a closed socket
    conn.close()
    assert proxy.stats.operations() == ["ListObjectsV2"] * 3


def test_concurrent_clients(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    c = client(s3, proxy)

    def writer(n: int) -> None:
        for i in range(5):
            c.put_object(Bucket=bucket, Key=f"w{n}/{i}", Body=f"{n}-{i}".encode())

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(s3.list_keys(bucket)) == 30
    assert s3.read_text(bucket, "w5/4") == "5-4"
    assert proxy.stats.seen("PutObject") == 30 and proxy.stats.errors() == []


@pytest.mark.parametrize(
    ("method", "target", "headers", "operation", "conditional"),
    [
        ("POST", "/b/k?uploads", (), "CreateMultipartUpload", False),
        ("PUT", "/b/k?partNumber=3&uploadId=u", (), "UploadPart", False),
        ("POST", "/b/k?uploadId=u", ("If-None-Match",), "CompleteMultipartUpload", True),
        ("DELETE", "/b/k?uploadId=u", (), "AbortMultipartUpload", False),
        ("PUT", "/b/k/with/slashes", ("If-None-Match",), "PutObject", True),
        ("PUT", "/b/k", ("x-amz-copy-source",), "CopyObject", False),
        ("GET", "/b?list-type=2&prefix=p", (), "ListObjectsV2", False),
        ("GET", "/b?uploads", (), "ListMultipartUploads", False),
        ("POST", "/b?delete", (), "DeleteObjects", False),
        ("GET", "/b?location", (), "GetBucketLocation", False),
        ("GET", "/b/k", ("If-None-Match",), "GetObject", False),
        ("HEAD", "/b/k", (), "HeadObject", False),
        ("PUT", "/b", (), "CreateBucket", False),
        ("GET", "/b?tagging", (), "Other", False),
        ("POST", "/moto-api/reset", (), "MotoApi", False),
    ],
)
def test_classify(
    method: str, target: str, headers: tuple[str, ...], operation: str, conditional: bool
) -> None:
    assert classify(method, target, headers)[2:] == (operation, conditional)


# -- faults ----------------------------------------------------------------------------------------


def test_error_before_is_not_forwarded(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    proxy.add_rule("error_before", "PutObject", status=503, code="SlowDown")
    with pytest.raises(ClientError) as exc:
        client(s3, proxy).put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_code(exc) == ("SlowDown", 503)
    assert s3.list_keys(bucket) == []
    assert proxy.stats.fired("error_before", "PutObject")


def test_error_early_answers_before_reading_the_body_and_closes(
    s3: MotoServer, bucket: str, proxy: FaultProxy
) -> None:
    proxy.add_rule("error_early", "PutObject", status=404, code="NoSuchUpload")
    host, port = proxy.endpoint.removeprefix("http://").split(":")
    body = b"x" * (32 << 20)  # more than the socket buffers hold: the send is cut short
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("PUT", f"/{bucket}/k")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    try:
        connection.send(body)
    except (BrokenPipeError, ConnectionResetError):
        cut_short = True  # the answer went out, and the socket closed, while we were sending
    else:
        cut_short = False
    assert cut_short
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Connection")) == (404, "close")
    assert b"<Code>NoSuchUpload</Code>" in answer.read()
    connection.close()
    assert s3.list_keys(bucket) == []
    assert proxy.stats.fired("error_early", "PutObject")


def test_error_before_then_botocore_retry_succeeds(
    s3: MotoServer, bucket: str, proxy: FaultProxy
) -> None:
    proxy.add_rule("error_before", "PutObject", first=1)
    response = client(s3, proxy, attempts=2).put_object(Bucket=bucket, Key="k", Body=b"x")
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert proxy.stats.operations() == ["PutObject", "PutObject"]
    assert s3.read_object(bucket, "k") == b"x"


@pytest.mark.parametrize("kind", ["error_after", "reset_after"])
def test_lost_answer_but_object_stored(
    s3: MotoServer, bucket: str, proxy: FaultProxy, kind: Any
) -> None:
    proxy.add_rule(kind, "PutObject")
    with pytest.raises((ClientError, ConnectionClosedError)) as exc:
        client(s3, proxy).put_object(Bucket=bucket, Key="k", Body=b"stored")
    if kind == "error_after":
        assert error_code(exc) == ("InternalError", 500)  # type: ignore[arg-type]
    else:
        assert type(exc.value) is ConnectionClosedError
    assert s3.read_object(bucket, "k") == b"stored"
    assert proxy.stats.faults(kind, "PutObject") == 1


def test_conditional_put_retried_after_lost_answer_fails_precondition(
    s3: MotoServer, bucket: str, proxy: FaultProxy
) -> None:
    """Why the connector must treat 412 after a retry as "maybe my own earlier write"."""
    proxy.add_rule("reset_after", "PutObject", conditional=True, times=1)
    with pytest.raises(ClientError) as exc:
        client(s3, proxy, attempts=2).put_object(Bucket=bucket, Key="k", Body=b"x", IfNoneMatch="*")
    assert error_code(exc) == ("PreconditionFailed", 412)
    assert s3.read_object(bucket, "k") == b"x"


@pytest.mark.parametrize("kind", ["reset_before", "reset_mid_request"])
def test_reset_before_forwarding(s3: MotoServer, bucket: str, proxy: FaultProxy, kind: Any) -> None:
    proxy.add_rule(kind, "PutObject")
    with pytest.raises(ConnectionClosedError):
        client(s3, proxy).put_object(Bucket=bucket, Key="k", Body=os.urandom(64 * 1024))
    assert s3.list_keys(bucket) == []
    assert proxy.stats.fired(kind, "PutObject") and not proxy.stats.fired(kind, "HeadObject")


def test_reset_mid_chunked_request(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    proxy.add_rule("reset_mid_request", "PutObject")
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        put_chunked(proxy, f"/{bucket}/k", [b"a" * 1000, b"b" * 1000], s3.ensure_admin())
    assert s3.list_keys(bucket) == [] and proxy.stats.fired("reset_mid_request")


def test_unreachable_upstream_is_a_502_and_an_error(s3: MotoServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with start_proxy(f"http://127.0.0.1:{dead_port}") as proxy, pytest.raises(ClientError) as exc:
        client(s3, proxy).list_buckets()
    assert error_code(exc) == ("FaultProxyUpstreamError", 502)
    assert len(proxy.stats.errors()) == 1


def test_ok_with_error_body(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    c = client(s3, proxy)
    for key in ("once", "retried"):
        upload = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        tag = c.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"p")
        parts = {"Parts": [{"PartNumber": 1, "ETag": tag["ETag"]}]}
        proxy.add_rule("ok_with_error_body", "CompleteMultipartUpload", times=1)
        complete = dict(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload=parts)
        if key == "once":  # botocore turns the 200 into a 500 error for Complete...
            with pytest.raises(ClientError) as exc:
                c.complete_multipart_upload(**complete, IfNoneMatch="*")
            assert error_code(exc) == ("InternalError", 500)
        else:  # ...and retries it: moto accepts a repeated Complete, even with If-None-Match
            client(s3, proxy, attempts=2).complete_multipart_upload(**complete, IfNoneMatch="*")
        assert s3.read_object(bucket, key) == b"p"  # completed both times
    proxy.add_rule("ok_with_error_body", ["PutObject", "GetObject"])
    with pytest.raises(ClientError) as exc:  # botocore checks every non-streaming S3 answer...
        c.put_object(Bucket=bucket, Key="put", Body=b"x")
    assert error_code(exc) == ("InternalError", 500)
    assert s3.read_object(bucket, "put") == b"x"
    body = c.get_object(Bucket=bucket, Key="put")["Body"].read()  # ...but not streaming ones
    assert body.startswith(b"<?xml") and b"<Code>InternalError</Code>" in body
    assert proxy.stats.faults("ok_with_error_body") == 4


def test_delay_longer_than_read_timeout(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    proxy.add_rule("delay", "PutObject", delay_s=0.5)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        client(s3, proxy, read_timeout=0.2).put_object(Bucket=bucket, Key="slow", Body=b"x")
    assert s3.list_keys(bucket) == []  # not yet...
    while not s3.list_keys(bucket) and time.monotonic() - started < 3:
        time.sleep(0.05)
    assert s3.list_keys(bucket) == ["slow"]  # ...but S3 executed it after the client gave up
    assert time.monotonic() - started >= 0.5


def test_go_dead_503_spares_moto_api(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    c = client(s3, proxy)
    proxy.go_dead("503")
    for call, kwargs in ((c.put_object, {"Key": "k", "Body": b"x"}), (c.list_objects_v2, {})):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, **kwargs)
        assert error_code(exc) == ("SlowDown", 503)
    with pytest.raises(ClientError) as exc:
        c.head_bucket(Bucket=bucket)
    assert error_code(exc) == ("503", 503)  # HEAD answers carry no body, only the status
    with urllib.request.urlopen(f"{proxy.endpoint}/moto-api/data.json", timeout=5) as response:
        assert response.status == 200
    proxy.revive()
    c.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert proxy.stats.faults("dead_503") == 3 and proxy.stats.seen("MotoApi") == 1


def test_go_dead_refuse_then_revive_on_same_port(
    s3: MotoServer, bucket: str, proxy: FaultProxy
) -> None:
    c = client(s3, proxy)
    c.head_bucket(Bucket=bucket)  # leaves a pooled keep-alive connection behind
    port = proxy.port
    proxy.go_dead("refuse")
    with pytest.raises(EndpointConnectionError):
        c.head_bucket(Bucket=bucket)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    proxy.revive()
    assert proxy.port == port
    c.put_object(Bucket=bucket, Key="back", Body=b"x")
    assert s3.list_keys(bucket) == ["back"]


# -- rules and stats -------------------------------------------------------------------------------


def put_outcomes(c: Any, bucket: str, count: int, **kwargs: Any) -> list[str]:
    outcomes = []
    for i in range(count):
        try:
            c.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x", **kwargs)
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(str(exc.response["Error"]["Code"]))
    return outcomes


def test_seeded_probability_is_reproducible(s3: MotoServer, bucket: str) -> None:
    def run(seed: int) -> tuple[list[str], list[Any]]:
        with start_proxy(s3.endpoint, seed) as proxy:
            proxy.add_rule("error_before", "PutObject", probability=0.5, code="SlowDown")
            outcomes = put_outcomes(client(s3, proxy), bucket, 16)
            return outcomes, proxy.stats.events()

    rng = random.Random(11)
    model = ["SlowDown" if rng.random() < 0.5 else "ok" for _ in range(16)]
    first, again, other = run(11), run(11), run(12)
    assert first == again and first[0] == model
    assert other[0] != model
    assert [event.seq for event in first[1]] == [i for i, o in enumerate(model, 1) if o != "ok"]


def test_selectors_and_precedence(s3: MotoServer, bucket: str, proxy: FaultProxy) -> None:
    c = client(s3, proxy)
    nth = proxy.add_rule("error_before", "PutObject", nth=2, code="Second")
    first = proxy.add_rule("error_before", ["PutObject", "UploadPart"], first=3, code="Early")
    assert put_outcomes(c, bucket, 5) == ["Early", "Second", "Early", "ok", "ok"]
    assert (nth.seen, nth.fired, first.seen, first.fired) == (5, 1, 5, 2)
    proxy.clear_rules()
    once = proxy.add_rule("error_before", code="Once", times=1, conditional=True)
    assert put_outcomes(c, bucket, 2) == ["ok", "ok"]
    assert put_outcomes(c, bucket, 2, IfNoneMatch="*") == ["Once", "PreconditionFailed"]
    assert (once.seen, once.fired) == (2, 1)
    assert proxy.stats.faults("error_before", "PutObject") == 4
    assert "error_before@PutObject=4" in proxy.stats.summary()


def test_rules_reject_unknown_names() -> None:
    for bad in (
        {"kind": "explode"},
        {"kind": "delay", "operations": frozenset({"PutObjekt"})},
        {"kind": "delay", "nth": 1, "first": 1},
        {"kind": "delay", "probability": 2.0},
    ):
        with pytest.raises(ValueError):
            FaultRule(**bad)


def test_stop_closes_sockets_and_threads(s3: MotoServer, bucket: str) -> None:
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd"))
    proxy = start_proxy(s3.endpoint)
    conns = [http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5) for _ in range(3)]
    for conn in conns:
        conn.request("GET", f"/{bucket}?list-type=2")
        conn.getresponse().read()  # the connection stays open, idle in keep-alive
    proxy.add_rule("delay", delay_s=30)

    def slow_request() -> None:
        with contextlib.suppress(OSError):  # the proxy drops it on stop()
            urllib.request.urlopen(f"{proxy.endpoint}/{bucket}", timeout=10)

    slow = threading.Thread(target=slow_request)
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2  # the delay is cut short
    assert all(conn.sock is not None and conn.sock.recv(1) == b"" for conn in conns)
    for conn in conns:
        conn.close()
    slow.join(timeout=5)
    assert threading.active_count() == threads_before
    assert len(os.listdir("/proc/self/fd")) == fds_before
