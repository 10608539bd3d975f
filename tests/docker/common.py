"""Helpers for the Docker tests: the entrypoint run with fake programs, docs' docker commands."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT

DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
BUILD_CAFFE = DOCKER / "build_caffe.sh"
BASH = shutil.which("bash") or "/bin/bash"
#: Pages whose ```bash blocks hold the canonical docker commands (README once the lead merges them).
DOC_PAGES = (ROOT / "docs" / "docker.md", ROOT / "README.md")
#: The image tags the docs build, and the Dockerfile of each.
IMAGES = {"mcnn:caffe": "Dockerfile.caffe", "mcnn:torch": "Dockerfile"}


def load_check_image():
    """docker/check_image.py as a module (docker/ is not a package)."""
    spec = importlib.util.spec_from_file_location("check_image", DOCKER / "check_image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command_table() -> dict[str, str]:
    return load_check_image().command_table()


def find_tool(name: str) -> str | None:
    """A linter on PATH or next to this interpreter (a venv's bin/ that is not on PATH)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.is_file() else None)


# ---------------------------------------------------------------------------------------------
# The entrypoint with fake programs

#: A fake program: prints its name, then HOME, then one argument a line.
FAKE = '#!/bin/sh\nprintf "%s\\n" "${0##*/}" "HOME=$HOME" "$@"\n'
COMMON_PROGRAMS = ("python", "python3", "bash", "sh", "pip", "nvidia-smi")
CAFFE_IMAGE_PROGRAMS = (*COMMON_PROGRAMS, "caffe", "convert_imageset", "compute_image_mean")
TORCH_IMAGE_PROGRAMS = (*COMMON_PROGRAMS, "torchrun")


@dataclass
class Exec:
    """What the entrypoint ran: the program's name, HOME, its arguments."""

    returncode: int
    stdout: str
    stderr: str
    program: str | None = None
    home: str | None = None
    args: list[str] = field(default_factory=list)


def make_fake_bin(folder: Path, programs: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in programs:
        path = folder / name
        path.write_text(FAKE)
        path.chmod(0o755)
    return folder


def make_fake_home(folder: Path) -> Path:
    """A MCNN_HOME holding an (empty) script for every command of the table."""
    for script in command_table().values():
        path = folder / script
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return folder


def run_entrypoint(args: list[str], fake_bin: Path, env: dict[str, str] | None = None) -> Exec:
    """Run docker/entrypoint.sh with only ``fake_bin`` on PATH (it needs no other program)."""
    full_env = {"PATH": str(fake_bin), **(env or {})}
    proc = subprocess.run([BASH, str(ENTRYPOINT), *args], capture_output=True, text=True, env=full_env,
                          timeout=30)
    result = Exec(proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stdout.split("\n")[:-1]
    if proc.returncode == 0 and len(lines) >= 2 and lines[1].startswith("HOME="):
        result.program, result.home, result.args = lines[0], lines[1][5:], lines[2:]
    return result


# ---------------------------------------------------------------------------------------------
# docker commands in the docs

#: docker run options that take a value (as `--opt value` or `--opt=value`), and those that do not.
RUN_VALUE_OPTIONS = {"-v", "--volume", "-e", "--env", "-u", "--user", "-w", "--workdir", "--gpus",
                     "--shm-size", "--ipc", "--name", "--mount", "--network", "--env-file", "--cpus",
                     "-m", "--memory"}
RUN_FLAGS = {"--rm", "-i", "-t", "-it", "-ti", "--init"}
BUILD_VALUE_OPTIONS = {"-f", "--file", "-t", "--tag", "--build-arg", "--target", "--platform"}


@dataclass
class DockerRun:
    line: str
    options: list[tuple[str, str | None]]
    image: str
    args: list[str]


@dataclass
class DockerBuild:
    line: str
    dockerfile: str
    tags: list[str]
    build_args: list[str]
    context: str


def docker_lines(pages=DOC_PAGES) -> list[str]:
    """Every `docker ...` command in the pages' ```bash blocks (continuations joined, comments cut)."""
    lines = []
    for page in pages:
        if not page.is_file():
            continue
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("docker "):
                    lines.append(line)
    return lines


def _split_options(words: list[str], value_options: set[str], flags: set[str], line: str):
    """Split leading options off ``words``: ([(name, value or None)], the rest)."""
    options, i = [], 0
    while i < len(words) and words[i].startswith("-"):
        name, has_value, value = words[i].partition("=")
        if name in value_options and not has_value:
            if i + 1 >= len(words):
                raise AssertionError(f"{line}: {name} needs a value")
            options.append((name, words[i + 1]))
            i += 2
        elif name in value_options or name in flags:
            options.append((name, value if has_value else None))
            i += 1
        else:
            raise AssertionError(f"{line}: docker option {name} is unknown to tests/docker/common.py")
    return options, words[i:]


def parse_run(line: str) -> DockerRun:
    words = shlex.split(line)
    assert words[:2] == ["docker", "run"], line
    options, rest = _split_options(words[2:], RUN_VALUE_OPTIONS, RUN_FLAGS, line)
    assert rest, f"{line}: no image"
    return DockerRun(line, options, rest[0], rest[1:])


def parse_build(line: str) -> DockerBuild:
    words = shlex.split(line)
    assert words[:2] == ["docker", "build"], line
    options, rest = _split_options(words[2:], BUILD_VALUE_OPTIONS, set(), line)
    assert len(rest) == 1, f"{line}: expected one build context after the options"
    files = [v for n, v in options if n in ("-f", "--file")]
    return DockerBuild(line, files[-1] if files else "Dockerfile",
                       [v for n, v in options if n in ("-t", "--tag")],
                       [v for n, v in options if n == "--build-arg"], rest[0])


def docker_runs() -> list[DockerRun]:
    return [parse_run(line) for line in docker_lines() if line.startswith("docker run ")]


def docker_builds() -> list[DockerBuild]:
    return [parse_build(line) for line in docker_lines() if line.startswith("docker build ")]


def run_script(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Run docker/build_caffe.sh with ``env`` added to this process's environment."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([BASH, str(BUILD_CAFFE), *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd or ROOT, timeout=timeout)
