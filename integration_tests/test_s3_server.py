"""Tests of the integration-test infrastructure itself (moto server, IAM, process helpers)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from integration_tests.connector import (
    MakeConfig,
    aws_env,
    configured_catalog,
    global_state,
    iam_role_credentials,
    legacy_state,
    log_message,
    record,
    run_connector,
    start_connector,
    stream_state,
    stream_status,
)
from integration_tests.s3_server import (
    MotoServer,
    seed_policy,
    seed_policy_with_delete,
    unique_name,
)

MIB = 1024 * 1024


def error_code(call: Callable[[], Any]) -> str:
    """Run ``call`` and return the S3/IAM error code it raised (fails if it succeeded)."""
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


# ---------------------------------------------------------------------------------------------
# IAM enforcement
# ---------------------------------------------------------------------------------------------


def test_seed_policy_user_can_write_list_locate_and_multipart_but_not_read_or_delete(
    s3: MotoServer, bucket: str
) -> None:
    s3.put_object(bucket, "existing/neighbour.txt", b"keep me")
    user = s3.create_user_with_policy("seed-user", seed_policy(bucket))
    s3.enforce_iam(True)
    client = s3.user_client("s3", user)

    client.put_object(Bucket=bucket, Key="data/one.jsonl", Body=b'{"a":1}\n')
    listed = client.list_objects_v2(Bucket=bucket, Prefix="data/")
    assert [o["Key"] for o in listed["Contents"]] == ["data/one.jsonl"]
    assert client.get_bucket_location(Bucket=bucket).get("LocationConstraint") in (None, "")

    # Multipart: every part but the last must be >= 5 MiB.
    upload = client.create_multipart_upload(Bucket=bucket, Key="data/big.jsonl")
    upload_id = upload["UploadId"]
    part1 = b"x" * (5 * MIB)
    part2 = b"tail\n"
    etags = [
        client.upload_part(
            Bucket=bucket, Key="data/big.jsonl", UploadId=upload_id, PartNumber=n, Body=body
        )["ETag"]
        for n, body in ((1, part1), (2, part2))
    ]
    assert len(s3.list_multipart_uploads(bucket)) == 1
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="data/big.jsonl",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, 1)]
        },
    )

    # Reading and deleting are not in the seed policy.
    assert error_code(lambda: client.get_object(Bucket=bucket, Key="data/one.jsonl")) == (
        "AccessDenied"
    )
    assert error_code(lambda: client.delete_object(Bucket=bucket, Key="data/one.jsonl")) == (
        "AccessDenied"
    )
    # Listing open multipart uploads needs s3:ListBucketMultipartUploads and aborting one needs
    # s3:AbortMultipartUpload: neither is in the seed policy (as on AWS), so an aborted upload
    # stays open.
    assert error_code(lambda: client.list_multipart_uploads(Bucket=bucket)) == "AccessDenied"
    open_id = client.create_multipart_upload(Bucket=bucket, Key="data/aborted")["UploadId"]
    assert error_code(
        lambda: client.abort_multipart_upload(Bucket=bucket, Key="data/aborted", UploadId=open_id)
    ) == ("AccessDenied")
    assert [u["Key"] for u in s3.list_multipart_uploads(bucket)] == ["data/aborted"]
    s3.admin_client("s3").abort_multipart_upload(
        Bucket=bucket, Key="data/aborted", UploadId=open_id
    )

    # The admin helpers still work while enforcement is on.
    assert s3.iam_enforced
    assert s3.list_keys(bucket) == ["data/big.jsonl", "data/one.jsonl", "existing/neighbour.txt"]
    assert s3.read_object(bucket, "data/big.jsonl") == part1 + part2
    assert s3.read_jsonl(bucket, "data/one.jsonl") == [{"a": 1}]
    assert s3.list_multipart_uploads(bucket) == []
    second = s3.create_bucket(unique_name("it-second"))
    assert second in s3.list_buckets()


def test_multipart_part_below_5_mib_is_entity_too_small(s3: MotoServer, bucket: str) -> None:
    client = s3.admin_client("s3")
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    etags = [
        client.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=n, Body=b"x")[
            "ETag"
        ]
        for n in (1, 2)
    ]
    parts = [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, 1)]
    code = error_code(
        lambda: client.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    )
    assert code == "EntityTooSmall"
    client.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    assert s3.list_multipart_uploads(bucket) == []


def test_unknown_keys_and_policyless_users_are_rejected(s3: MotoServer, bucket: str) -> None:
    nobody = s3.create_user_with_policy("no-policy", None)
    s3.enforce_iam(True)
    stranger = s3.client("s3", "AKIAUNKNOWNKEY000000", "not-a-real-secret-key-000000000000000000")
    assert error_code(lambda: stranger.list_objects_v2(Bucket=bucket)) == "InvalidAccessKeyId"
    client = s3.user_client("s3", nobody)
    assert error_code(lambda: client.put_object(Bucket=bucket, Key="k", Body=b"x")) == (
        "AccessDenied"
    )


def test_path_prefix_policy_and_delete_variant(s3: MotoServer, bucket: str) -> None:
    narrow = s3.create_user_with_policy("narrow", seed_policy(bucket, "/exports/raw/"))
    deleter = s3.create_user_with_policy("deleter", seed_policy_with_delete(bucket))
    s3.enforce_iam(True)

    narrow_client = s3.user_client("s3", narrow)
    narrow_client.put_object(Bucket=bucket, Key="exports/raw/a.jsonl", Body=b"{}\n")
    assert error_code(
        lambda: narrow_client.put_object(Bucket=bucket, Key="elsewhere/a.jsonl", Body=b"{}\n")
    ) == ("AccessDenied")

    deleter_client = s3.user_client("s3", deleter)
    deleter_client.put_object(Bucket=bucket, Key="d/1", Body=b"1")
    deleter_client.put_object(Bucket=bucket, Key="d/2", Body=b"2")
    deleter_client.delete_object(Bucket=bucket, Key="d/1")
    assert s3.list_keys(bucket, "d/") == ["d/2"]

    # DeleteObjects without s3:DeleteObject: HTTP 200 with per-key AccessDenied (like AWS).
    result = narrow_client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "exports/raw/a.jsonl"}]}
    )
    assert [e["Code"] for e in result.get("Errors", [])] == ["AccessDenied"]
    assert s3.list_keys(bucket, "exports/") == ["exports/raw/a.jsonl"]


# ---------------------------------------------------------------------------------------------
# STS AssumeRole
# ---------------------------------------------------------------------------------------------


def test_assume_role_with_external_id(s3: MotoServer, bucket: str) -> None:
    base = s3.create_user_with_policy("base-user", None)
    role_arn = s3.create_role("writer-role", base.arn, seed_policy(bucket), external_id="ext-1234")
    s3.enforce_iam(True)

    session = s3.assume_role(base, role_arn, external_id="ext-1234")
    assert session.access_key_id.startswith("ASIA")
    role_client = s3.user_client("s3", session)
    role_client.put_object(Bucket=bucket, Key="from-role.jsonl", Body=b"{}\n")
    assert s3.list_keys(bucket) == ["from-role.jsonl"]
    assert error_code(lambda: role_client.get_object(Bucket=bucket, Key="from-role.jsonl")) == (
        "AccessDenied"
    )
    # The base user itself has no S3 rights.
    base_client = s3.user_client("s3", base)
    assert error_code(lambda: base_client.put_object(Bucket=bucket, Key="k", Body=b"x")) == (
        "AccessDenied"
    )

    with pytest.raises(ClientError) as info:
        s3.assume_role(base, role_arn, external_id="wrong-external-id")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_assume_role_trust_policy_names_the_user(s3: MotoServer, bucket: str) -> None:
    trusted = s3.create_user_with_policy("trusted", None)
    other = s3.create_user_with_policy("other", None)
    role_arn = s3.create_role("only-trusted", trusted.arn, seed_policy(bucket))
    # Give "other" the identity permission too: the trust policy alone must stop it.
    s3.put_user_policy(
        "other",
        "assume-anything",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
        },
    )
    s3.enforce_iam(True)
    s3.assume_role(trusted, role_arn)
    with pytest.raises(ClientError) as info:
        s3.assume_role(other, role_arn)
    assert info.value.response["Error"]["Code"] == "AccessDenied"


# Not tested here: moto lets AssumeRole WITHOUT an ExternalId through a StringEquals
# sts:ExternalId trust condition (AWS denies it), so only a wrong external id can be shown denied.


# ---------------------------------------------------------------------------------------------
# Server lifecycle
# ---------------------------------------------------------------------------------------------


def test_reset_wipes_everything_and_turns_enforcement_off(s3: MotoServer, bucket: str) -> None:
    s3.put_object(bucket, "a", b"1")
    user = s3.create_user_with_policy("u1", seed_policy(bucket))
    s3.enforce_iam(True)
    old_admin = s3.admin_keys
    assert old_admin is not None

    s3.reset()

    assert not s3.iam_enforced
    admin_after_reset = s3.admin_keys
    assert admin_after_reset is None
    assert s3.list_buckets() == []
    # Enforcement is off: any keys work, even the deleted user's.
    s3.user_client("s3", user).create_bucket(Bucket="after-reset")
    assert s3.list_buckets() == ["after-reset"]
    # Turning enforcement on again makes a fresh admin; the old keys are gone.
    s3.enforce_iam(True)
    new_admin = s3.admin_keys
    assert new_admin is not None
    assert new_admin != old_admin
    assert s3.list_buckets() == ["after-reset"]
    stale = s3.client("s3", old_admin.access_key_id, old_admin.secret_access_key)
    assert error_code(lambda: stale.list_buckets()) == "InvalidAccessKeyId"
    s3.enforce_iam(False)
    assert s3.admin_client("s3").list_buckets()["Buckets"][0]["Name"] == "after-reset"


def test_bucket_in_other_region(s3: MotoServer) -> None:
    name = s3.create_bucket(unique_name("it-eu"), region="eu-west-1")
    assert s3.bucket_region(name) == "eu-west-1"


def test_servers_are_independent_and_stop_kills_the_process(s3: MotoServer, bucket: str) -> None:
    with MotoServer.start() as other:
        assert other.endpoint != s3.endpoint
        assert other.list_buckets() == []
        other.create_bucket("only-on-other")
        assert "only-on-other" not in s3.list_buckets()
        pid = other.pid
        assert pid is not None
        os.kill(pid, 0)  # alive
    assert not other.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert bucket in s3.list_buckets()


def test_make_config_defaults(s3: MotoServer, bucket: str, make_config: MakeConfig) -> None:
    config = make_config(bucket, path="raw", stream_prefix="p_", file_size_mb=10)
    assert config["s3_bucket_name"] == bucket
    assert config["s3_bucket_path"] == "raw"
    assert config["s3_endpoint"] == s3.endpoint
    assert config["s3_bucket_region"] == "us-east-1"
    assert config["format"] == {"format_type": "JSONL"}
    assert config["stream_prefix"] == "p_"
    assert config["file_size_mb"] == 10
    credentials = config["credentials"]
    assert credentials["auth_type"] == "access_key"
    assert 16 <= len(credentials["access_key_id"]) <= 128
    assert 16 <= len(credentials["secret_access_key"]) <= 128
    # The default keys belong to a real admin user: they keep working under enforcement.
    s3.enforce_iam(True)
    client = s3.client("s3", credentials["access_key_id"], credentials["secret_access_key"])
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.read_object(bucket, "k") == b"x"

    role = make_config(bucket, credentials=iam_role_credentials("arn:aws:iam::1:role/r", "e"))
    assert role["credentials"] == {
        "auth_type": "iam_role",
        "role_arn": "arn:aws:iam::1:role/r",
        "external_id": "e",
    }


# ---------------------------------------------------------------------------------------------
# Message builders and the connector process helpers (with a stand-in program, not main.py)
# ---------------------------------------------------------------------------------------------


def test_builders_produce_valid_airbyte_messages_and_catalog() -> None:
    from airbyte_cdk.models import AirbyteMessageSerializer, ConfiguredAirbyteCatalogSerializer

    messages = [
        record("users", {"id": 1}, emitted_at=1700000000000),
        record("users", {"id": 2}, namespace="crm", meta={"changes": []}),
        stream_state("users", {"cursor": 2}, record_count=2),
        stream_state("users", {"cursor": 3}, namespace="crm"),
        global_state({"lsn": 7}, {"users": {"c": 1}, ("orders", "crm"): {"c": 2}}),
        legacy_state({"users": {"cursor": 4}}),
        legacy_state({"users": {"cursor": 5}}, explicit_type=True),
        stream_status("users", "COMPLETE"),
        log_message("hello"),
    ]
    for message in messages:
        AirbyteMessageSerializer.load(message)
    assert messages[2]["state"]["sourceStats"] == {"recordCount": 2.0}
    assert "type" not in messages[5]["state"]

    catalog = configured_catalog(
        [
            "users",
            {"name": "orders", "namespace": "crm", "destination_sync_mode": "overwrite"},
        ],
        generation_id=3,
        minimum_generation_id=0,
        sync_id=42,
    )
    parsed = ConfiguredAirbyteCatalogSerializer.load(catalog)
    users, orders = parsed.streams
    assert users.destination_sync_mode.value == "append"
    assert users.sync_mode.value == "incremental"
    assert orders.stream.namespace == "crm"
    assert orders.destination_sync_mode.value == "overwrite"
    assert orders.sync_mode.value == "full_refresh"
    assert (orders.generation_id, orders.minimum_generation_id, orders.sync_id) == (3, 0, 42)

    shorthand = configured_catalog(["a"], sync_mode="overwrite")
    assert shorthand["streams"][0]["destination_sync_mode"] == "overwrite"
    assert "generation_id" not in shorthand["streams"][0]
    ConfiguredAirbyteCatalogSerializer.load(shorthand)


FAKE_CONNECTOR = textwrap.dedent(
    """
    import json, os, sys
    args = sys.argv[1:]
    command = args[0]
    config = json.load(open(args[args.index("--config") + 1])) if "--config" in args else None
    catalog = json.load(open(args[args.index("--catalog") + 1])) if "--catalog" in args else None
    print("not json at all", flush=True)
    print(json.dumps({"type": "LOG", "log": {"level": "INFO", "message": json.dumps({
        "command": command, "config": config, "catalog": catalog, "cwd": os.getcwd(),
        "env": sorted(os.environ),
    })}}), flush=True)
    if command == "check":
        print(json.dumps({"type": "CONNECTION_STATUS",
                          "connectionStatus": {"status": "FAILED", "message": "nope"}}))
        sys.exit(0)
    for line in sys.stdin:
        message = json.loads(line)
        if message["type"] == "STATE":
            print(json.dumps(message), flush=True)
        elif message.get("record", {}).get("data", {}).get("fail"):
            print(json.dumps({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 0,
                "error": {"message": "boom", "failure_type": "system_error"}}}), flush=True)
            print("stderr text", file=sys.stderr)
            sys.exit(1)
    """
)


@pytest.fixture
def fake_connector(tmp_path: Path) -> Path:
    path = tmp_path / "fake_main.py"
    path.write_text(FAKE_CONNECTOR)
    return path


def test_run_connector_plumbing(
    fake_connector: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "parent-key-must-not-leak")
    monkeypatch.setenv("AWS_PROFILE", "parent-profile")
    config = {"s3_bucket_name": "b"}
    catalog = configured_catalog(["users"])

    check = run_connector(["check"], config=config, entrypoint=fake_connector)
    assert check.returncode == 0
    assert check.connection_status() == {"status": "FAILED", "message": "nope"}
    assert check.non_json_lines == ["not json at all"]
    seen = json.loads(check.logs()[0]["message"])
    assert seen["command"] == "check"
    assert seen["config"] == config
    assert seen["catalog"] is None
    assert Path(seen["cwd"]) == Path(__file__).resolve().parent.parent
    assert not [name for name in seen["env"] if name.startswith("AWS_")]

    write = run_connector(
        ["write"],
        config=config,
        catalog=catalog,
        stdin_lines=[
            record("users", {"id": 1}),
            json.dumps(stream_state("users", {"c": 1})),
            (json.dumps(stream_state("users", {"c": 2})) + "\n").encode(),
            record("users", {"fail": True}),
        ],
        env=aws_env("AKIAEXPLICITLYPASSED", "explicit-secret-0000000000000000"),
        entrypoint=fake_connector,
    )
    assert write.returncode == 1
    assert [s["stream"]["stream_state"] for s in write.states()] == [{"c": 1}, {"c": 2}]
    assert write.trace_errors() == [{"message": "boom", "failure_type": "system_error"}]
    assert "stderr text" in write.stderr
    seen = json.loads(write.logs()[0]["message"])
    assert seen["catalog"] == catalog
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(seen["env"])
    assert "AWS_PROFILE" not in seen["env"]
    with pytest.raises(AssertionError, match="boom"):
        write.assert_success()

    # A generator of many lines is streamed (no deadlock on full pipes).
    lines = (record("users", {"id": i, "pad": "x" * 200}) for i in range(20_000))
    big = run_connector(
        ["write"], config=config, catalog=catalog, stdin_lines=lines, entrypoint=fake_connector
    )
    assert big.returncode == 0, big.describe()


def test_streaming_process(fake_connector: Path) -> None:
    with start_connector(
        ["write"], config={}, catalog=configured_catalog(["s"]), entrypoint=fake_connector
    ) as proc:
        assert proc.wait_for_type("LOG")["log"]["level"] == "INFO"
        proc.send(record("s", {"id": 1}))
        proc.assert_no_message(within=0.3)
        proc.send(stream_state("s", {"c": 1}))
        state = proc.wait_for_type("STATE", timeout=10)
        assert state["state"]["stream"]["stream_state"] == {"c": 1}
        proc.send_many([record("s", {"id": 2}), stream_state("s", {"c": 2})])
        run = proc.finish(timeout=30)
    assert run.returncode == 0
    assert [s["stream"]["stream_state"] for s in run.states()] == [{"c": 1}, {"c": 2}]
    assert run.non_json_lines == ["not json at all"]
