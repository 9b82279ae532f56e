"""parse_config: each credentials and format variant, normalisation, part sizes, no secret shown."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from destination_s3 import config as config_module
from destination_s3.config import (
    MIB,
    AccessKeyCredentials,
    Compression,
    ConnectorConfig,
    DefaultChainCredentials,
    OutputFormat,
    RoleCredentials,
    normalise_bucket_path,
    parse_config,
)

SPEC = json.loads((Path(config_module.__file__).parent / "spec.json").read_text())[
    "connectionSpecification"
]

KEY_ID = "AKIAVKPEQFPUU7XNIKXW"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETKEY"
EXTERNAL_ID = "ext-id-very-secret-123"
ROLE_ARN = "arn:aws:iam::012345678901:role/tarsal-s3-destination-connector-role"

ACCESS_KEY = {"auth_type": "access_key", "access_key_id": KEY_ID, "secret_access_key": SECRET}
IAM_ROLE = {"auth_type": "iam_role", "role_arn": ROLE_ARN, "external_id": EXTERNAL_ID}
DEFAULT_CHAIN = {"auth_type": "default_chain"}


def _raw(*, validate: bool = True, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "s3_bucket_name": "tarsal-s3-destination",
        "s3_bucket_region": "eu-west-1",
        "credentials": ACCESS_KEY,
        "format": {"format_type": "JSONL"},
    }
    raw.update(overrides)
    if validate:  # the configs used here are ones the spec accepts
        jsonschema.validate(raw, SPEC)
    return raw


def test_minimal_config_with_defaults() -> None:
    parsed = parse_config(_raw())
    assert parsed.location.bucket == "tarsal-s3-destination"
    assert parsed.location.region == "eu-west-1"
    assert parsed.location.path == ""
    assert parsed.location.endpoint is None
    assert parsed.stream_prefix == ""
    assert parsed.file_size_bytes == 128 * MIB
    assert parsed.flush_interval_seconds == 300.0
    assert parsed.output_format is OutputFormat.JSONL


def test_full_config() -> None:
    parsed = parse_config(
        _raw(
            s3_bucket_path="/data//raw/",
            stream_prefix="tarsal_",
            s3_endpoint="http://minio.internal:9000/",
            file_size_mb=5000,
            flush_interval_seconds=60,
        )
    )
    assert parsed.location.path == "data/raw"
    assert parsed.location.endpoint == "http://minio.internal:9000"
    assert parsed.stream_prefix == "tarsal_"
    assert parsed.file_size_bytes == 5000 * MIB
    assert parsed.flush_interval_seconds == 60.0


def test_endpoint_normalisation() -> None:
    assert parse_config(_raw(s3_endpoint="")).location.endpoint is None
    endpoint = " https://s3.us-east-2.amazonaws.com// "
    parsed = parse_config(_raw(validate=False, s3_endpoint=endpoint))
    assert parsed.location.endpoint == "https://s3.us-east-2.amazonaws.com"
    assert parse_config(_raw(validate=False, s3_endpoint="  ")).location.endpoint is None


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (ACCESS_KEY, AccessKeyCredentials(KEY_ID, SECRET)),
        (IAM_ROLE, RoleCredentials(ROLE_ARN, EXTERNAL_ID)),
        ({"auth_type": "iam_role", "role_arn": ROLE_ARN}, RoleCredentials(ROLE_ARN, None)),
        (
            {"auth_type": "iam_role", "role_arn": ROLE_ARN, "external_id": ""},
            RoleCredentials(ROLE_ARN, None),
        ),
        (DEFAULT_CHAIN, DefaultChainCredentials()),
    ],
)
def test_credentials_variants(credentials: dict[str, str], expected: object) -> None:
    assert parse_config(_raw(credentials=credentials)).credentials == expected


@pytest.mark.parametrize(
    ("output_format", "expected"),
    [
        ({"format_type": "JSONL"}, OutputFormat.JSONL),
        ({"format_type": "CSV", "flattening": "No flattening"}, OutputFormat.CSV_NO_FLATTENING),
        (
            {"format_type": "CSV", "flattening": "Root-level flattening"},
            OutputFormat.CSV_ROOT_LEVEL,
        ),
        # Airbyte's S3 destination spells it without the hyphen.
        (
            {"format_type": "CSV", "flattening": "Root level flattening"},
            OutputFormat.CSV_ROOT_LEVEL,
        ),
    ],
)
def test_format_variants(output_format: dict[str, str], expected: OutputFormat) -> None:
    assert parse_config(_raw(format=output_format)).output_format is expected


# (format, compression, extension): every format with every codec, defaults included.
COMPRESSIONS: list[tuple[dict[str, Any], Compression, str]] = [
    ({"format_type": "JSONL"}, Compression.NONE, "jsonl"),
    ({"format_type": "JSONL", "compression": {}}, Compression.NONE, "jsonl"),
    (
        {"format_type": "JSONL", "compression": {"compression_type": "No Compression"}},
        Compression.NONE,
        "jsonl",
    ),
    (
        {"format_type": "JSONL", "compression": {"compression_type": "GZIP"}},
        Compression.GZIP,
        "jsonl.gz",
    ),
    (
        {"format_type": "JSONL", "compression": {"compression_type": "ZSTD"}},
        Compression.ZSTD,
        "jsonl.zst",
    ),
    (
        {"format_type": "CSV", "compression": {"compression_type": "GZIP"}},
        Compression.GZIP,
        "csv.gz",
    ),
    (
        {
            "format_type": "CSV",
            "flattening": "Root level flattening",
            "compression": {"compression_type": "ZSTD"},
        },
        Compression.ZSTD,
        "csv.zst",
    ),
    (
        {"format_type": "CSV", "compression": {"compression_type": "No Compression"}},
        Compression.NONE,
        "csv",
    ),
]


@pytest.mark.parametrize(("output_format", "compression", "extension"), COMPRESSIONS)
def test_compression_and_extension(
    output_format: dict[str, Any], compression: Compression, extension: str
) -> None:
    parsed = parse_config(_raw(format=output_format))
    assert parsed.compression is compression
    assert parsed.extension == extension
    # The content type stays the format's: the codec is in the name, not in Content-Encoding.
    assert parsed.output_format.content_type in ("application/jsonl", "text/csv; charset=utf-8")


def test_unknown_compression_type_is_an_error() -> None:
    raw = _raw(
        validate=False, format={"format_type": "CSV", "compression": {"compression_type": "LZ4"}}
    )
    with pytest.raises(ValueError, match="compression_type 'LZ4'"):
        parse_config(raw)


def test_csv_without_flattening_key_means_no_flattening() -> None:
    raw = _raw()
    raw["format"] = {"format_type": "CSV"}  # flattening has a default: No flattening
    assert parse_config(raw).output_format is OutputFormat.CSV_NO_FLATTENING


def test_unknown_auth_type_and_format_are_errors() -> None:
    raw = _raw()
    with pytest.raises(ValueError, match="auth_type"):
        parse_config({**raw, "credentials": {"auth_type": "magic"}})
    with pytest.raises(ValueError, match="format_type"):
        parse_config({**raw, "format": {"format_type": "PARQUET"}})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", ""),
        ("/", ""),
        ("//", ""),
        ("a", "a"),
        ("/a//b/", "a/b"),
        ("a/b/c", "a/b/c"),
        ("  data_sync/raw/ ", "data_sync/raw"),
        ("///x///y///", "x/y"),
    ],
)
def test_bucket_path_normalisation(path: str, expected: str) -> None:
    assert normalise_bucket_path(path) == expected
    assert parse_config(_raw(validate=False, s3_bucket_path=path)).location.path == expected


def test_part_size_fits_s3_limits_for_every_file_size() -> None:
    _raw(file_size_mb=1)
    _raw(file_size_mb=5000)  # the spec's bounds
    for file_size_mb in range(1, 5001):
        parsed = parse_config(_raw(validate=False, file_size_mb=file_size_mb))
        part = parsed.part_size_bytes
        assert part >= 5 * MIB
        assert part <= 5 * 1024 * MIB  # S3's largest part
        assert math.ceil(parsed.file_size_bytes / part) <= 10_000


def test_part_size_grows_beyond_the_minimum_for_huge_files() -> None:
    base = parse_config(_raw())
    huge = dataclasses.replace(base, file_size_bytes=100_000 * MIB)
    assert huge.part_size_bytes > 5 * MIB
    assert math.ceil(huge.file_size_bytes / huge.part_size_bytes) <= 10_000


def test_config_is_frozen() -> None:
    parsed = parse_config(_raw())
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.stream_prefix = "x"  # type: ignore[misc]


def _all_variants() -> list[ConnectorConfig]:
    return [
        parse_config(_raw(credentials=credentials, format=output_format))
        for credentials in (ACCESS_KEY, IAM_ROLE, DEFAULT_CHAIN)
        for output_format in (
            {"format_type": "JSONL"},
            {"format_type": "CSV", "flattening": "Root-level flattening"},
        )
    ]


@pytest.mark.parametrize("secret", [SECRET, KEY_ID, EXTERNAL_ID])
def test_no_secret_in_repr_str_or_summary(secret: str) -> None:
    for parsed in _all_variants():
        for shown in (
            repr(parsed),
            str(parsed),
            f"{parsed}",
            repr(parsed.credentials),
            str(parsed.credentials),
            parsed.summary(),
        ):
            assert secret not in shown


def test_credentials_repr_says_what_is_hidden() -> None:
    assert repr(AccessKeyCredentials(KEY_ID, SECRET)) == (
        "AccessKeyCredentials(access_key_id=<hidden>, secret_access_key=<hidden>)"
    )
    assert repr(RoleCredentials(ROLE_ARN, EXTERNAL_ID)) == (
        f"RoleCredentials(role_arn={ROLE_ARN!r}, external_id=<hidden>)"
    )
    assert repr(RoleCredentials(ROLE_ARN, None)) == (
        f"RoleCredentials(role_arn={ROLE_ARN!r}, external_id=None)"
    )


def test_summary_shows_the_settings() -> None:
    parsed = parse_config(
        _raw(
            credentials=IAM_ROLE,
            format={"format_type": "CSV", "flattening": "Root-level flattening"},
            s3_bucket_path="data/raw",
            stream_prefix="tarsal_",
            file_size_mb=64,
            flush_interval_seconds=30,
            encryption={"encryption_type": "SSE-KMS", "kms_key_id": "alias/data"},
        )
    )
    assert parsed.summary() == (
        "bucket=tarsal-s3-destination region=eu-west-1 path=data/raw path_format=default "
        "endpoint=AWS default "
        f"auth=iam_role({ROLE_ARN}) format=csv_root_level compression=none stream_prefix='tarsal_' "
        "file_size_mb=64 flush_interval_seconds=30 encryption=SSE-KMS(alias/data)"
    )
    summary = parse_config(_raw(credentials=DEFAULT_CHAIN)).summary()
    assert "auth=default_chain" in summary
    assert "path=/ " in summary
    assert "auth=access_key" in parse_config(_raw()).summary()
    gzip = {"format_type": "JSONL", "compression": {"compression_type": "GZIP"}}
    assert "format=jsonl compression=gzip " in parse_config(_raw(format=gzip)).summary()
