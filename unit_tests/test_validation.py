"""validate_config: a table of configs and the exact problems reported, secrets never shown."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from destination_s3 import validation
from destination_s3.config import (
    AccessKeyCredentials,
    Compression,
    DefaultChainCredentials,
    OutputFormat,
    RoleCredentials,
)
from destination_s3.validation import (
    AIRBYTE_S3_OPTIONS,
    PATTERN_WORDS,
    ConfigError,
    secret_values,
    validate_config,
)
from unit_tests.test_config import (
    ACCESS_KEY,
    DEFAULT_CHAIN,
    EXTERNAL_ID,
    IAM_ROLE,
    KEY_ID,
    ROLE_ARN,
    SECRET,
)

DROP = object()  # an override value that removes the field

REGION_EXAMPLES = '"us-east-1", "us-east-2", "us-west-1"'
ACCESS_KEY_WHEN = 'when credentials.auth_type is "access_key"'


def config(**overrides: Any) -> dict[str, Any]:
    """A valid config with top-level fields replaced; `credentials__x` sets credentials.x."""
    raw: dict[str, Any] = {
        "s3_bucket_name": "tarsal-s3-destination",
        "s3_bucket_region": "eu-west-1",
        "credentials": dict(ACCESS_KEY),
        "format": {"format_type": "JSONL"},
    }
    for name, value in overrides.items():
        parent, _, child = name.partition("__")
        target, key = (raw[parent], child) if child else (raw, parent)
        if value is DROP:
            target.pop(key, None)
        else:
            target[key] = value
    return raw


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_config(raw)
    error = caught.value
    assert str(error) == " ".join(error.problems)  # every problem, one sentence each
    return error.problems


# (id, config, the exact problems)
INVALID: list[tuple[str, Any, list[str]]] = [
    # Required fields: each one, and all at once (every problem is reported, not the first).
    ("no bucket", config(s3_bucket_name=DROP), ["s3_bucket_name is required."]),
    ("no credentials", config(credentials=DROP), ["credentials (Authentication) is required."]),
    ("no format", config(format=DROP), ["format (Output Format) is required."]),
    (
        "nothing",
        {},
        [
            "s3_bucket_name is required.",
            "credentials (Authentication) is required.",
            "format (Output Format) is required.",
        ],
    ),
    (
        "access key without keys",
        config(credentials={"auth_type": "access_key"}),
        [
            f"credentials.access_key_id (S3 Key ID) is required {ACCESS_KEY_WHEN}.",
            f"credentials.secret_access_key (S3 Access Key) is required {ACCESS_KEY_WHEN}.",
        ],
    ),
    (
        "role without arn",
        config(credentials={"auth_type": "iam_role", "external_id": EXTERNAL_ID}),
        [
            "credentials.role_arn (IAM Role ARN) is required when credentials.auth_type is "
            '"iam_role".'
        ],
    ),
    # Discriminators: missing or unknown, with the values allowed.
    (
        "no auth_type",
        config(credentials={"access_key_id": KEY_ID}),
        [
            "credentials.auth_type is required and must be one of "
            '"iam_role", "access_key", "default_chain".'
        ],
    ),
    (
        "unknown auth_type",
        config(credentials={"auth_type": "magic"}),
        [
            'credentials.auth_type must be one of "iam_role", "access_key", "default_chain"; '
            'got "magic".'
        ],
    ),
    (
        "no format_type",
        config(format={}),
        ['format.format_type is required and must be one of "JSONL", "CSV", "Parquet".'],
    ),
    (
        "Avro",
        config(format={"format_type": "Avro", "compression_codec": {"codec": "snappy"}}),
        ['format.format_type must be one of "JSONL", "CSV", "Parquet"; got "Avro".'],
    ),
    (
        "Parquet codec unknown",
        config(format={"format_type": "Parquet", "compression_codec": "LZO"}),
        [
            'format.compression_codec must be one of "SNAPPY", "ZSTD", "GZIP", "UNCOMPRESSED"; '
            'got "LZO".'
        ],
    ),
    (
        "Parquet row group of 0 MB",
        config(format={"format_type": "Parquet", "block_size_mb": 0}),
        ["format.block_size_mb (Row Group Size (MB)) must be an integer from 1 to 1024; got 0."],
    ),
    (
        "Parquet with JSONL's compression",
        config(format={"format_type": "Parquet", "compression": {"compression_type": "GZIP"}}),
        [
            "format.compression does not apply here; remove it (Parquet compresses its column "
            "chunks: use format.compression_codec)."
        ],
    ),
    # Wrong types: the JSON type given is named, never the value.
    (
        "bucket number",
        config(s3_bucket_name=123),
        ["s3_bucket_name must be a string, not an integer."],
    ),
    (
        "credentials string",
        config(credentials="abc"),
        ["credentials (Authentication) must be an object, not a string."],
    ),
    (
        "format list",
        config(format=["JSONL"]),
        ["format (Output Format) must be an object, not a list."],
    ),
    (
        "file size string",
        config(file_size_mb="128"),
        ["file_size_mb (Target File Size (MiB)) must be an integer, not a string."],
    ),
    (
        "file size boolean",
        config(file_size_mb=True),
        ["file_size_mb (Target File Size (MiB)) must be an integer, not a boolean."],
    ),
    (
        "flush interval fraction",
        config(flush_interval_seconds=12.5),
        ["flush_interval_seconds must be an integer, not a decimal number."],
    ),
    ("prefix null", config(stream_prefix=None), ["stream_prefix must be a string, not null."]),
    (
        "region number",
        config(s3_bucket_region=5),
        ["s3_bucket_region must be a string, not an integer."],
    ),
    (
        "secret number",
        config(credentials=dict(IAM_ROLE, external_id=12345678)),
        ["credentials.external_id must be a string, not an integer."],
    ),
    # Secret lengths: the rule in words, no value, no length of the value.
    (
        "short key id",
        config(credentials__access_key_id="AKIA"),
        [
            "credentials.access_key_id (S3 Key ID) must be from 16 to 128 characters long; "
            "the value given is shorter."
        ],
    ),
    (
        "long secret",
        config(credentials__secret_access_key="x" * 129),
        [
            "credentials.secret_access_key (S3 Access Key) must be from 16 to 128 characters "
            "long; the value given is longer."
        ],
    ),
    # Secrets equal to words of the sentence: nothing is masked, so nothing is mangled.
    (
        "secrets equal to words",
        config(credentials__access_key_id="short", credentials__secret_access_key="credentials"),
        [
            "credentials.access_key_id (S3 Key ID) must be from 16 to 128 characters long; "
            "the value given is shorter.",
            "credentials.secret_access_key (S3 Access Key) must be from 16 to 128 characters "
            "long; the value given is shorter.",
        ],
    ),
    # Enums, with the values allowed (a long list by its size and the nearest examples).
    (
        "unknown region",
        config(s3_bucket_region="eu-west-9"),
        [
            "s3_bucket_region must be one of the 37 AWS region codes listed in the spec, such as "
            '"eu-west-1", "eu-west-2", "eu-west-3"; got "eu-west-9".'
        ],
    ),
    (
        "empty region (Airbyte's default)",
        config(s3_bucket_region=""),
        [
            "s3_bucket_region must be one of the 37 AWS region codes listed in the spec, such as "
            f'{REGION_EXAMPLES}; got "".'
        ],
    ),
    (
        "unknown flattening",
        config(format={"format_type": "CSV", "flattening": "Nested flattening"}),
        [
            "format.flattening (Normalization (Flattening)) must be one of "
            '"No flattening", "Root-level flattening", "Root level flattening"; '
            'got "Nested flattening".'
        ],
    ),
    # Compression: only the codecs offered, in the spec's shape.
    (
        "unsupported compression type",
        config(format={"format_type": "JSONL", "compression": {"compression_type": "SNAPPY"}}),
        [
            "format.compression.compression_type must be one of "
            '"No Compression", "GZIP", "ZSTD"; got "SNAPPY".'
        ],
    ),
    (
        "compression type in lower case",
        config(format={"format_type": "CSV", "compression": {"compression_type": "gzip"}}),
        [
            "format.compression.compression_type must be one of "
            '"No Compression", "GZIP", "ZSTD"; got "gzip".'
        ],
    ),
    (
        "compression as a string",
        config(format={"format_type": "JSONL", "compression": "GZIP"}),
        ["format.compression must be an object, not a string."],
    ),
    (
        "compression type not a string",
        config(format={"format_type": "JSONL", "compression": {"compression_type": None}}),
        ["format.compression.compression_type must be a string, not null."],
    ),
    # Patterns, explained in words.
    (
        "bucket name",
        config(s3_bucket_name="My_Bucket"),
        [
            "s3_bucket_name must be a bucket name of 3 to 63 characters (lowercase letters, "
            "digits, dots and hyphens) that starts and ends with a letter or digit; "
            'got "My_Bucket".'
        ],
    ),
    (
        "role arn",
        config(credentials={"auth_type": "iam_role", "role_arn": "arn:aws:iam::123:role/x"}),
        [
            "credentials.role_arn (IAM Role ARN) must be an IAM role ARN: arn:aws:iam::, the "
            "12-digit account ID, :role/ and the role name "
            '(e.g. arn:aws:iam::012345678901:role/my-role); got "arn:aws:iam::123:role/x".'
        ],
    ),
    (
        "endpoint",
        config(s3_endpoint="minio:9000"),
        [
            "s3_endpoint (Endpoint) must be empty, or an http:// or https:// URL without "
            'spaces; got "minio:9000".'
        ],
    ),
    # Bounds.
    (
        "file size 0",
        config(file_size_mb=0),
        ["file_size_mb (Target File Size (MiB)) must be an integer from 1 to 5000; got 0."],
    ),
    (
        "file size 5001",
        config(file_size_mb=5001),
        ["file_size_mb (Target File Size (MiB)) must be an integer from 1 to 5000; got 5001."],
    ),
    (
        "flush interval 0",
        config(flush_interval_seconds=0),
        ["flush_interval_seconds must be an integer from 1 to 86400; got 0."],
    ),
    (
        "flush interval 86401",
        config(flush_interval_seconds=86401),
        ["flush_interval_seconds must be an integer from 1 to 86400; got 86401."],
    ),
    # Airbyte's S3 destination options that change the output, and its credential layout.
    (
        "Parquet's codec",
        config(format={"format_type": "CSV", "compression_codec": "SNAPPY"}),
        [
            "format.compression_codec is not supported by this connector yet; remove it (it is "
            "Parquet's and Avro's codec setting; JSONL and CSV are compressed with "
            'format.compression, e.g. {"compression_type": "GZIP"}).'
        ],
    ),
    (
        "Parquet block size next to a supported compression",
        config(
            format={
                "format_type": "JSONL",
                "compression": {"compression_type": "ZSTD"},
                "block_size_mb": 128,
            }
        ),
        [
            "format.block_size_mb is not supported by this connector yet; remove it (it is a "
            'Parquet setting; set format.format_type to "Parquet" to use it).'
        ],
    ),
    (
        "file name pattern",
        config(s3_path_format="${NAMESPACE}/${STREAM_NAME}/", file_name_pattern="{date}"),
        [
            "file_name_pattern is not supported by this connector yet; remove it "
            "(object names would not follow that pattern).",
        ],
    ),
    # s3_path_format: the template's own problems, each named with its fix.
    (
        "path format without the stream name",
        config(s3_path_format="${NAMESPACE}/${YEAR}"),
        [
            "s3_path_format: it has no ${STREAM_NAME}: two streams would share objects; add "
            "it, e.g. ${NAMESPACE}/${STREAM_NAME}."
        ],
    ),
    (
        "path format with an unknown variable",
        config(s3_path_format="${STREAM_NAME}/${DATE}"),
        [
            "s3_path_format: unknown variable ${DATE}; use one of NAMESPACE, STREAM_NAME, YEAR, "
            "MONTH, DAY, HOUR, MINUTE, EPOCH, SYNC_ID, UUID."
        ],
    ),
    (
        "path format with a parent folder",
        config(s3_path_format="${STREAM_NAME}/../x"),
        ["s3_path_format: a folder named `..` is not allowed; rename it."],
    ),
    (
        "path format with an empty folder",
        config(s3_path_format="${STREAM_NAME}//${YEAR}"),
        ["s3_path_format: it has an empty folder name (`//`); remove the extra `/`."],
    ),
    (
        "path format too long",
        config(s3_path_format="${STREAM_NAME}/" + "x" * 600),
        ["s3_path_format must be at most 512 characters long; the value given is longer."],
    ),
    (
        "JSONL flattening",
        config(format={"format_type": "JSONL", "flattening": "Root level flattening"}),
        [
            "format.flattening is not supported by this connector yet; remove it "
            "(JSONL records are never flattened; use format_type CSV to flatten)."
        ],
    ),
    (
        "top-level access key",
        config(credentials=DROP, access_key_id=KEY_ID),
        [
            "credentials (Authentication) is required.",
            "access_key_id is not read at the top level by this connector (Airbyte's S3 "
            "destination layout); move it to credentials.access_key_id and set "
            'credentials.auth_type to "access_key".',
        ],
    ),
    # Several problems in one config: all of them, in spec order.
    (
        "several",
        config(s3_bucket_name=DROP, file_size_mb=0, credentials__access_key_id="AKIA"),
        [
            "s3_bucket_name is required.",
            "credentials.access_key_id (S3 Key ID) must be from 16 to 128 characters long; "
            "the value given is shorter.",
            "file_size_mb (Target File Size (MiB)) must be an integer from 1 to 5000; got 0.",
        ],
    ),
    ("not an object", [1, 2], ["The config must be a JSON object, not a list."]),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_config_problems(raw: Any, expected: list[str]) -> None:
    problems = problems_of(raw)
    assert problems == expected
    for secret in (KEY_ID, SECRET, EXTERNAL_ID):
        assert secret not in str(problems)
    assert "****" not in str(problems)


@pytest.mark.parametrize(
    ("field", "secret"),
    [
        ("access_key_id", "AKIA-too-short"),
        ("secret_access_key", "s3cr3t/too+shrt"),
        ("secret_access_key", "S" * 200),
    ],
)
def test_a_secret_is_not_quoted_even_from_another_field(field: str, secret: str) -> None:
    # A secret pasted into a field that is shown when wrong is not shown there either.
    raw = config(
        s3_bucket_name=f"X{secret}", s3_endpoint=secret, **{f"credentials__{field}": secret}
    )
    problems = problems_of(raw)
    fields = [problem.split(" ", 1)[0] for problem in problems]
    assert fields == ["s3_bucket_name", f"credentials.{field}", "s3_endpoint"]
    for problem in problems:
        assert secret not in problem
        assert "****" not in problem
        assert "; got" not in problem


@pytest.mark.parametrize("path", sorted(AIRBYTE_S3_OPTIONS))
def test_each_airbyte_option_that_changes_output_is_refused(path: str) -> None:
    parent, _, name = path.rpartition(".")
    raw = config()
    (raw[parent] if parent else raw)[name] = "set"
    assert problems_of(raw) == [
        f"{path} is not supported by this connector yet; remove it ({AIRBYTE_S3_OPTIONS[path]})."
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("format.flattening", "No flattening"),
        ("format.compression_codec", "UNCOMPRESSED"),
        ("file_name_pattern", None),
        ("access_key_id", ""),
    ],
)
def test_airbyte_options_asking_for_the_default_are_only_warned(path: str, value: Any) -> None:
    parent, _, name = path.rpartition(".")
    raw = config()
    (raw[parent] if parent else raw)[name] = value
    assert validate_config(raw).warnings == [f"Ignored unknown config fields: {path}."]


# (format, expected output format, expected compression): the spec's values and Airbyte's spelling.
VALID_FORMATS: list[tuple[dict[str, Any], OutputFormat, Compression]] = [
    (
        {"format_type": format_type, **flattening, "compression": {"compression_type": codec}},
        output_format,
        Compression(codec),
    )
    for format_type, flattening, output_format in [
        ("JSONL", {}, OutputFormat.JSONL),
        ("CSV", {}, OutputFormat.CSV_NO_FLATTENING),
        ("CSV", {"flattening": "No flattening"}, OutputFormat.CSV_NO_FLATTENING),
        ("CSV", {"flattening": "Root-level flattening"}, OutputFormat.CSV_ROOT_LEVEL),
        ("CSV", {"flattening": "Root level flattening"}, OutputFormat.CSV_ROOT_LEVEL),
    ]
    for codec in ("No Compression", "GZIP", "ZSTD")
] + [
    ({"format_type": "JSONL"}, OutputFormat.JSONL, Compression.NONE),
    ({"format_type": "CSV", "compression": {}}, OutputFormat.CSV_NO_FLATTENING, Compression.NONE),
]


@pytest.mark.parametrize(("raw_format", "output_format", "compression"), VALID_FORMATS)
def test_every_format_with_every_compression_is_accepted_without_warning(
    raw_format: dict[str, Any], output_format: OutputFormat, compression: Compression
) -> None:
    validated = validate_config(config(format=raw_format))
    assert validated.warnings == []
    assert validated.config.output_format is output_format
    assert validated.config.compression is compression


def test_airbyte_style_csv_config_is_accepted() -> None:
    raw = config(
        format={
            "format_type": "CSV",
            "flattening": "Root level flattening",
            "compression": {"compression_type": "GZIP"},
        }
    )
    validated = validate_config(raw)
    assert validated.warnings == []
    assert validated.config.output_format is OutputFormat.CSV_ROOT_LEVEL
    assert validated.config.extension == "csv.gz"


def test_unknown_field_inside_compression_is_only_warned() -> None:
    raw = config(
        format={"format_type": "JSONL", "compression": {"compression_type": "GZIP", "x": 1}}
    )
    validated = validate_config(raw)
    assert validated.warnings == ["Ignored unknown config fields: format.compression.x."]
    assert validated.config.compression is Compression.GZIP


def test_unknown_harmless_fields_are_warned_by_name_only() -> None:
    raw = config(destination_type="s3", credentials__session_name="value-not-shown")
    raw["format"]["part_size_mb"] = 5
    validated = validate_config(raw)
    assert validated.warnings == [
        "Ignored unknown config fields: "
        "credentials.session_name, format.part_size_mb, destination_type."
    ]
    assert validate_config(config()).warnings == []


def test_csv_without_flattening_uses_the_default() -> None:
    validated = validate_config(config(format={"format_type": "CSV"}))
    assert validated.config.output_format is OutputFormat.CSV_NO_FLATTENING
    assert validated.warnings == []


def test_defaults_are_not_required() -> None:
    parsed = validate_config(config(s3_bucket_region=DROP)).config
    assert parsed.location.region == "us-east-1"
    assert parsed.file_size_bytes == 128 * 1024 * 1024
    assert parsed.flush_interval_seconds == 300.0


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (ACCESS_KEY, AccessKeyCredentials(KEY_ID, SECRET)),
        (IAM_ROLE, RoleCredentials(ROLE_ARN, EXTERNAL_ID)),
        ({"auth_type": "iam_role", "role_arn": ROLE_ARN}, RoleCredentials(ROLE_ARN, None)),
        (DEFAULT_CHAIN, DefaultChainCredentials()),
    ],
)
@pytest.mark.parametrize(
    ("output_format", "expected_format"),
    [
        ({"format_type": "JSONL"}, OutputFormat.JSONL),
        ({"format_type": "CSV", "flattening": "No flattening"}, OutputFormat.CSV_NO_FLATTENING),
        (
            {"format_type": "CSV", "flattening": "Root-level flattening"},
            OutputFormat.CSV_ROOT_LEVEL,
        ),
    ],
)
def test_valid_configs_of_every_auth_type_and_format(
    credentials: dict[str, str],
    expected: object,
    output_format: dict[str, str],
    expected_format: OutputFormat,
) -> None:
    raw = config(
        credentials=credentials,
        format=output_format,
        s3_bucket_path="data/raw",
        stream_prefix="tarsal_",
        s3_endpoint="http://minio.internal:9000",
        file_size_mb=5000,
        flush_interval_seconds=1,
    )
    validated = validate_config(raw)
    assert validated.warnings == []
    assert validated.config.credentials == expected
    assert validated.config.output_format is expected_format
    assert validated.config.file_size_bytes == 5000 * 1024 * 1024


def test_bounds_themselves_are_valid() -> None:
    for file_size_mb, flush_interval_seconds in ((1, 1), (5000, 86400)):
        validate_config(
            config(file_size_mb=file_size_mb, flush_interval_seconds=flush_interval_seconds)
        )


def test_secret_values() -> None:
    assert secret_values(config()) == [KEY_ID, SECRET]
    assert secret_values(config(credentials=IAM_ROLE)) == [EXTERNAL_ID]
    assert secret_values(config(credentials=dict(IAM_ROLE, external_id=""))) == []
    assert secret_values(config(credentials=DEFAULT_CHAIN, secret_access_key="top")) == ["top"]
    assert secret_values(config(credentials__access_key_id=1234)) == ["1234", SECRET]
    assert secret_values({"credentials": "not an object"}) == []


def test_config_error_of_one_message() -> None:
    error = ConfigError("one problem.")
    assert error.problems == ["one problem."]
    assert str(error) == error.message == "one problem."


def test_every_spec_pattern_is_explained_in_words() -> None:
    def patterns(schema: dict[str, Any], path: str) -> list[str]:
        found = [path] if "pattern" in schema else []
        for branch in schema.get("oneOf", []):
            found += patterns(branch, path)
        for name, prop in schema.get("properties", {}).items():
            found += patterns(prop, f"{path}.{name}".lstrip("."))
        return found

    spec_path = Path(validation.__file__).parent / "spec.json"
    spec = json.loads(spec_path.read_text())["connectionSpecification"]
    assert sorted(patterns(spec, "")) == sorted(PATTERN_WORDS)


def test_every_required_field_has_no_default() -> None:
    spec = validation._connection_spec()

    def objects(schema: dict[str, Any]) -> list[dict[str, Any]]:
        found = [schema] if "properties" in schema else []
        for child in [*schema.get("oneOf", []), *schema.get("properties", {}).values()]:
            found += objects(child)
        return found

    for schema in objects(spec):
        for name in schema.get("required", []):
            assert "default" not in schema["properties"][name], name


def test_the_whole_spec_is_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule the field-by-field walk does not know still fails the config."""
    strict = copy.deepcopy(validation._connection_spec())
    strict["additionalProperties"] = False
    monkeypatch.setattr(validation, "_connection_spec", lambda: strict)
    assert problems_of(config(extra=1)) == [
        "The config does not satisfy the spec's additionalProperties rule."
    ]


def test_imports_without_the_cdk() -> None:
    code = (
        "import sys, destination_s3.validation; "
        "sys.exit(any(name.startswith('airbyte_cdk') for name in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


@pytest.mark.parametrize("value", [None, "", "  "])
def test_an_unset_path_format_is_the_default_layout(value: Any) -> None:
    # Configs carried over from Airbyte's S3 destination may hold null or an empty string.
    raw = config()
    raw["s3_path_format"] = value
    assert validate_config(raw).config.path_template is None
