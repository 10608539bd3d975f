"""The docker commands in docs/docker.md (and the README): images, entrypoint, tool options."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.docker.common import (
    CAFFE_IMAGE_PROGRAMS,
    IMAGES,
    TORCH_IMAGE_PROGRAMS,
    DockerRun,
    command_table,
    docker_builds,
    docker_runs,
    make_fake_bin,
    make_fake_home,
    run_entrypoint,
)
from tests.support import ROOT, run_script

RUNS = docker_runs()
HELP_WORDS = {"help", "-h", "--help"}


def test_docs_show_both_images() -> None:
    assert {b.tags[0] for b in docker_builds()} == set(IMAGES)
    assert {r.image for r in RUNS} == set(IMAGES)
    assert len(RUNS) >= 10


def test_the_issue_command_is_documented() -> None:
    wanted = ["reproduce", "bbbc021", "--raw", "/data/BBBC021", "--out", "/data/runs/bbbc021", "--engine", "caffe"]
    assert any(r.image == "mcnn:caffe" and r.args == wanted and ("--gpus", "all") in r.options
               and ("-v", "/data:/data") in r.options for r in RUNS)


@pytest.mark.parametrize("build", docker_builds(), ids=lambda b: b.line)
def test_build_lines_match_the_dockerfiles(build) -> None:
    assert build.context == "."
    assert len(build.tags) == 1 and IMAGES[build.tags[0]] == build.dockerfile
    assert (ROOT / build.dockerfile).is_file()


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.line[11:90])
def test_run_lines_use_built_images_and_gpus_sensibly(run: DockerRun) -> None:
    assert run.image in IMAGES, f"{run.line}: image {run.image} is not built in the docs"
    gpus = [value for name, value in run.options if name == "--gpus"]
    assert all(value == "all" or value.startswith('"device=') for value in gpus), run.line
    for name, value in run.options:
        if name in ("-v", "--volume"):
            host, _, container = value.partition(":")
            assert host and container.startswith("/"), f"{run.line}: -v {value}"


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.line[11:90])
def test_run_lines_are_accepted_by_the_entrypoint(run: DockerRun, tmp_path: Path) -> None:
    programs = CAFFE_IMAGE_PROGRAMS if run.image == "mcnn:caffe" else TORCH_IMAGE_PROGRAMS
    fake_bin = make_fake_bin(tmp_path / "bin", programs)
    home = make_fake_home(tmp_path / "mcnn")
    out = run_entrypoint(run.args, fake_bin, {"MCNN_HOME": str(home)})
    assert out.returncode == 0, f"{run.line}: {out.stderr}"
    if not run.args or run.args[0] in HELP_WORDS:
        assert out.stdout.startswith("mcnn image"), run.line
        return
    table = command_table()
    if run.args[0] in table:
        expected = ("python", [str(home / table[run.args[0]]), *run.args[1:]])
    else:
        expected = (run.args[0], run.args[1:])
    assert (out.program, out.args) == expected, run.line


@functools.cache
def tool_help(script: str) -> str:
    proc = run_script(script, "--help", timeout=300)
    assert proc.returncode == 0, f"{script} --help: {proc.stderr}"
    return proc.stdout


def tool_runs() -> list[DockerRun]:
    table = command_table()
    return [r for r in RUNS if r.args and r.args[0] in table]


@pytest.mark.parametrize("run", tool_runs(), ids=lambda r: r.line[11:90])
def test_tool_options_exist(run: DockerRun) -> None:
    script = command_table()[run.args[0]]
    assert (ROOT / script).is_file(), f"{run.line}: {script} is missing"
    text = tool_help(script)
    for word in run.args[1:]:
        if word.startswith("-") and word not in HELP_WORDS and not word[1:2].isdigit():
            assert word in text, f"{run.line}: {script} --help does not mention {word}"
