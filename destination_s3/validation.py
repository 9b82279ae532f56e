"""Config validation against spec.json: one sentence per problem, naming the field and the rule.

Replaces the CDK's check, whose jsonschema message names no field, stops at the first problem, may
blame the wrong `oneOf` branch ("'JSONL' was expected") and quotes the value: a secret is then
masked by replacing its text everywhere, which mangles any equal word. Our sentences come from our
own templates and never hold a secret, so they need no masking. The rules are still checked by
jsonschema's Draft 7, as in the CDK. No airbyte_cdk import: the entry point validates first.
"""

from __future__ import annotations

import difflib
import functools
import json
import pkgutil
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft7Validator

from destination_s3.config import ConnectorConfig, parse_config
from destination_s3.layout import PathTemplateError

Schema = Mapping[str, Any]
FieldPath = tuple[str, ...]

_PARQUET_ONLY = 'it is a Parquet setting; set format.format_type to "Parquet" to use it'

# Options of Airbyte's own S3 destination that change what is written. A config carried over from
# it must not quietly produce other objects than it asks for, so these are refused, with what would
# differ, until supported. Other unknown fields are only warned about.
AIRBYTE_S3_OPTIONS: dict[str, str] = {
    "file_name_pattern": "object names would not follow that pattern",
    "format.compression_codec": "it is Parquet's and Avro's codec setting; JSONL and CSV are "
    'compressed with format.compression, e.g. {"compression_type": "GZIP"}',
    "format.flattening": "JSONL records are never flattened; use format_type CSV to flatten",
    "format.file_extension": "object names would keep this connector's extension",
    "format.block_size_mb": _PARQUET_ONLY,
    "format.page_size_kb": _PARQUET_ONLY,
    "format.max_padding_size_mb": _PARQUET_ONLY,
    "format.dictionary_page_size_kb": _PARQUET_ONLY,
    "format.dictionary_encoding": _PARQUET_ONLY,
}

# Known to the spec, but not in the format branch given: refused in the same way.
OTHER_BRANCH_OPTIONS: dict[str, str] = {
    "format.compression": "Parquet compresses its column chunks: use format.compression_codec",
}

# Airbyte's S3 destination takes credentials at the top level. Ignoring them would sync as another
# identity than the user meant, so they are refused with where they go here (and the auth_type).
AIRBYTE_TOP_LEVEL_CREDENTIALS: dict[str, str] = {
    "access_key_id": "access_key",
    "secret_access_key": "access_key",
    "role_arn": "iam_role",
}
_AIRBYTE_TOP_LEVEL_SECRETS = ("access_key_id", "secret_access_key")

# Values of those options that ask for what this connector does anyway: warned about, not refused.
_NO_OP_VALUES: dict[str, tuple[object, ...]] = {
    "format.flattening": ("No flattening",),
    "format.compression_codec": ("UNCOMPRESSED", {"codec": "no compression"}),
}

# A regular expression is no explanation: each spec `pattern`, in words.
PATTERN_WORDS: dict[str, str] = {
    "s3_bucket_name": "a bucket name of 3 to 63 characters (lowercase letters, digits, dots and "
    "hyphens) that starts and ends with a letter or digit",
    "credentials.role_arn": "an IAM role ARN: arn:aws:iam::, the 12-digit account ID, :role/ and "
    "the role name (e.g. arn:aws:iam::012345678901:role/my-role)",
    "s3_endpoint": "empty, or an http:// or https:// URL without spaces",
}

_KINDS = {"string": "a string", "integer": "an integer", "number": "a number"}
_KINDS |= {"object": "an object", "array": "a list", "boolean": "true or false", "null": "null"}
_VALUE_KINDS = {str: "a string", int: "an integer", float: "a decimal number", bool: "a boolean"}
_VALUE_KINDS |= {dict: "an object", list: "a list", type(None): "null"}


class ConfigError(Exception):
    """The config does not satisfy the spec; `str()` is every problem, one sentence each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems if problems else [message]


@dataclass(frozen=True)
class ValidatedConfig:
    config: ConnectorConfig
    warnings: list[str]  # for the caller to log; they name fields, never values


@functools.cache
def _connection_spec() -> dict[str, Any]:
    data = pkgutil.get_data("destination_s3", "spec.json")
    assert data is not None, "spec.json is missing from the destination_s3 package"
    spec: dict[str, Any] = json.loads(data)["connectionSpecification"]
    return spec


def secret_values(raw: Mapping[str, Any]) -> list[str]:
    """The values of every airbyte_secret field present (non-empty), for the caller to mask."""
    values: list[str] = []

    def walk(schema: Schema, node: object) -> None:
        if not isinstance(node, Mapping):
            return
        for branch in schema.get("oneOf", []):  # all branches: a stale field is a secret too
            walk(branch, node)
        for name, prop in schema.get("properties", {}).items():
            value = node.get(name)
            scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
            if prop.get("airbyte_secret") and scalar and str(value) not in ("", *values):
                values.append(str(value))
            walk(prop, value)

    # Airbyte's top-level key pair is a secret too, even though this connector refuses it there.
    top_level = {name: {"airbyte_secret": True} for name in _AIRBYTE_TOP_LEVEL_SECRETS}
    walk({"properties": {**_connection_spec()["properties"], **top_level}}, raw)
    return values


def validate_config(raw: Mapping[str, Any]) -> ValidatedConfig:
    """The typed config, or ConfigError listing every problem (no secret value in any)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"The config must be a JSON object, not {_kind(raw)}.")
    spec, config = _connection_spec(), dict(raw)
    walk = _Walk(secret_values(config))
    walk.object(spec, config, ())
    if not walk.problems:  # safety net for any rule the field-by-field walk does not know
        for error in Draft7Validator(spec).iter_errors(config):
            path = tuple(str(part) for part in error.absolute_path)
            walk.add(
                f"{_label(path, error.schema)} does not satisfy the spec's {error.validator} rule."
            )
    if walk.problems:
        raise ConfigError(" ".join(walk.problems), walk.problems)
    try:
        parsed = parse_config(config)
    except PathTemplateError as invalid:  # the template's own rules, past the spec's
        raise ConfigError(f"{invalid}.") from None
    ignored = ", ".join(walk.ignored)
    warnings = [f"Ignored unknown config fields: {ignored}."] if ignored else []
    return ValidatedConfig(parsed, warnings)


class _Walk:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.problems: list[str] = []
        self.ignored: list[str] = []

    def add(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def got(self, value: object, schema: Schema) -> str:
        """'; got <value>' when the value may be shown: never a secret, nor text containing one."""
        if schema.get("airbyte_secret") or not isinstance(value, str | int | float | None):
            return ""
        text = json.dumps(value)
        hidden = any(secret in text or secret in str(value) for secret in self.secrets)
        return "" if hidden or len(text) > 80 else f"; got {text}"

    def object(
        self, schema: Schema, value: dict[str, Any], path: FieldPath, when: str = ""
    ) -> None:
        properties: Mapping[str, Schema] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                self.add(f"{_label((*path, name), properties.get(name, {}))} is required{when}.")
        for name, prop in properties.items():
            if name in value:
                self.value(prop, value[name], (*path, name))
        for name in value:
            if name not in properties:
                self.unknown((*path, name), value[name])

    def value(self, schema: Schema, value: Any, path: FieldPath) -> None:
        if "oneOf" not in schema and "properties" not in schema:
            errors = list(Draft7Validator(schema).iter_errors(value))
            # A value of the wrong type breaks its other rules too: say only what matters.
            type_errors = [error for error in errors if error.validator == "type"]
            for error in type_errors or errors:
                self.add(self.describe(str(error.validator), schema, value, path))
        elif not isinstance(value, dict):
            self.add(f"{_label(path, schema)} must be an object, not {_kind(value)}.")
        elif "oneOf" in schema:
            self.one_of(schema, value, path)
        else:
            self.object(schema, value, path)

    def one_of(self, schema: Schema, value: dict[str, Any], path: FieldPath) -> None:
        """Validate against the branch the discriminator names, not whichever jsonschema tried."""
        branches = schema["oneOf"]
        key = next(
            name
            for name, prop in branches[0]["properties"].items()
            if "const" in prop and all(name in branch.get("required", []) for branch in branches)
        )
        consts = [branch["properties"][key]["const"] for branch in branches]
        allowed = _one_of(consts, ())
        tag_path = ".".join((*path, key))
        if key not in value:
            self.add(f"{tag_path} is required and must be {allowed}.")
            return
        tag = value[key]
        for const, branch in zip(consts, branches, strict=True):
            if type(tag) is type(const) and tag == const:
                self.object(branch, value, path, f" when {tag_path} is {json.dumps(const)}")
                return
        self.add(f"{tag_path} must be {allowed}{self.got(tag, {})}.")

    def describe(self, keyword: str, schema: Schema, value: Any, path: FieldPath) -> str:
        label, got = _label(path, schema), self.got(value, schema)
        if keyword == "type":
            return f"{label} must be {_kind_name(schema['type'])}, not {_kind(value)}."
        if keyword in ("enum", "const"):
            allowed = schema["enum"] if keyword == "enum" else [schema["const"]]
            return f"{label} must be {_one_of(allowed, path, value)}{got}."
        if keyword in ("minLength", "maxLength"):
            size = _bounds(schema.get("minLength"), schema.get("maxLength"))
            side = "shorter" if keyword == "minLength" else "longer"
            return f"{label} must be {size} characters long; the value given is {side}."
        if keyword == "pattern":
            words = PATTERN_WORDS.get(".".join(path), f"text matching {schema['pattern']}")
            return f"{label} must be {words}{got}."
        if keyword in ("minimum", "maximum"):
            size = _bounds(schema.get("minimum"), schema.get("maximum"))
            return f"{label} must be {_kind_name(schema.get('type', 'number'))} {size}{got}."
        return f"{label} does not satisfy the spec's {keyword} rule {schema[keyword]!r}{got}."

    def unknown(self, path: FieldPath, value: Any) -> None:
        dotted = ".".join(path)
        unset = value is None or value == "" or value in _NO_OP_VALUES.get(dotted, ())
        if dotted in AIRBYTE_S3_OPTIONS and not unset:
            self.add(
                f"{dotted} is not supported by this connector yet; remove it "
                f"({AIRBYTE_S3_OPTIONS[dotted]})."
            )
        elif dotted in OTHER_BRANCH_OPTIONS and not unset:
            self.add(f"{dotted} does not apply here; remove it ({OTHER_BRANCH_OPTIONS[dotted]}).")
        elif dotted in AIRBYTE_TOP_LEVEL_CREDENTIALS and not unset:
            auth_type = json.dumps(AIRBYTE_TOP_LEVEL_CREDENTIALS[dotted])
            self.add(
                f"{dotted} is not read at the top level by this connector (Airbyte's S3 "
                f"destination layout); move it to credentials.{dotted} and set "
                f"credentials.auth_type to {auth_type}."
            )
        else:
            self.ignored.append(dotted)


def _label(path: FieldPath, schema: Schema) -> str:
    """'credentials.access_key_id (S3 Key ID)': the path, and the title the UI shows if it adds."""
    if not path:
        return "The config"
    dotted, title = ".".join(path), schema.get("title") or ""
    same = re.sub(r"[\W_]", "", title.lower()) == re.sub(r"[\W_]", "", path[-1].lower())
    return dotted if same or not title else f"{dotted} ({title})"


def _one_of(allowed: list[Any], path: FieldPath, value: object = None) -> str:
    shown = [json.dumps(item) for item in allowed]
    if len(shown) == 1:
        return shown[0]
    if len(shown) <= 6:
        return "one of " + ", ".join(shown)
    # A long list (regions) is named by its size, with the entries closest to the value as examples.
    near = difflib.get_close_matches(str(value), [str(item) for item in allowed], n=3, cutoff=0.6)
    examples = [json.dumps(item) for item in allowed if str(item) in near] or shown[:3]
    noun = "AWS region codes" if path == ("s3_bucket_region",) else "values"
    return f"one of the {len(shown)} {noun} listed in the spec, such as {', '.join(examples)}"


def _kind_name(json_type: str | list[str]) -> str:
    names = [json_type] if isinstance(json_type, str) else json_type
    return " or ".join(_KINDS.get(name, name) for name in names)


def _bounds(low: object, high: object) -> str:
    if low is not None and high is not None:
        return f"from {low} to {high}"
    return f"at least {low}" if high is None else f"at most {high}"


def _kind(value: object) -> str:
    """The JSON type of a value, in words (never the value itself)."""
    return _VALUE_KINDS.get(type(value), type(value).__name__)
