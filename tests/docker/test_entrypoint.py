"""docker/entrypoint.sh: the command table, what it execs, help and errors (fake programs on PATH)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docker.common import (
    CAFFE_IMAGE_PROGRAMS,
    TORCH_IMAGE_PROGRAMS,
    command_table,
    make_fake_bin,
    make_fake_home,
    run_entrypoint,
)
from tests.support import ROOT

#: The toolkit's commands and scripts, as the design fixes them.
EXPECTED_TABLE = {
    "reproduce": "tools/reproduce.py",
    "train": "tools/train.py",
    "evaluate": "tools/evaluate.py",
    "predict": "tools/predict.py",
    "dose_response": "tools/dose_response.py",
    "demo": "tools/demo.py",
    "make_net": "tools/make_net.py",
    "make_solver": "tools/make_solver.py",
    "prepare": "data_prep/prepare.py",
    "synthesize": "data_prep/synthesize.py",
}


@pytest.fixture
def caffe_bin(tmp_path: Path) -> Path:
    return make_fake_bin(tmp_path / "caffe-bin", CAFFE_IMAGE_PROGRAMS)


@pytest.fixture
def torch_bin(tmp_path: Path) -> Path:
    return make_fake_bin(tmp_path / "torch-bin", TORCH_IMAGE_PROGRAMS)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return make_fake_home(tmp_path / "mcnn")


def test_command_table_is_the_design() -> None:
    assert command_table() == EXPECTED_TABLE


def test_table_scripts_exist_in_the_checkout() -> None:
    missing = sorted(script for script in command_table().values() if not (ROOT / script).is_file())
    assert not missing, f"the image build would fail on missing scripts: {', '.join(missing)}"


@pytest.mark.parametrize(("name", "script"), sorted(EXPECTED_TABLE.items()))
def test_toolkit_command_runs_its_script(name: str, script: str, torch_bin: Path, home: Path) -> None:
    out = run_entrypoint([name, "--out", "/data/a b", "-gpu", "all"], torch_bin, {"MCNN_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    assert (out.program, out.args) == ("python", [str(home / script), "--out", "/data/a b", "-gpu", "all"])


def test_hyphenated_name_is_accepted(torch_bin: Path, home: Path) -> None:
    out = run_entrypoint(["dose-response", "--help"], torch_bin, {"MCNN_HOME": str(home)})
    assert out.args == [str(home / "tools/dose_response.py"), "--help"]


def test_mcnn_home_defaults_to_the_checkout(torch_bin: Path) -> None:
    out = run_entrypoint(["make_net", "--summary"], torch_bin)
    assert out.args == [str(ROOT / "tools" / "make_net.py"), "--summary"]


def test_mcnn_python_chooses_the_interpreter(torch_bin: Path, home: Path) -> None:
    out = run_entrypoint(["train", "-solver", "s.prototxt"], torch_bin,
                         {"MCNN_HOME": str(home), "MCNN_PYTHON": "python3"})
    assert (out.program, out.args) == ("python3", [str(home / "tools/train.py"), "-solver", "s.prototxt"])


def test_missing_script_is_one_clear_error(torch_bin: Path, tmp_path: Path) -> None:
    out = run_entrypoint(["reproduce", "bbbc021"], torch_bin, {"MCNN_HOME": str(tmp_path)})
    assert out.returncode == 127
    assert out.stderr == (f"mcnn: command 'reproduce' is not in this image "
                          f"({tmp_path}/tools/reproduce.py is missing)\n")


@pytest.mark.parametrize("args", [["caffe", "train", "-solver", "s.prototxt", "-gpu", "all"],
                                  ["caffe", "device_query", "-gpu", "0"],
                                  ["convert_imageset", "--gray", "root/", "list.txt", "db"]])
def test_caffe_programs_pass_through_in_the_caffe_image(args: list[str], caffe_bin: Path) -> None:
    out = run_entrypoint(args, caffe_bin)
    assert out.returncode == 0, out.stderr
    assert (out.program, out.args) == (args[0], args[1:])


@pytest.mark.parametrize("program", ["caffe", "compute_image_mean"])
def test_caffe_in_the_engine_image_is_one_line(program: str, torch_bin: Path) -> None:
    out = run_entrypoint([program, "train", "-solver", "s.prototxt"], torch_bin)
    assert out.returncode == 127
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert "no real Caffe" in out.stderr and "train -solver" in out.stderr and "Dockerfile.caffe" in out.stderr


@pytest.mark.parametrize("args", [["bash", "-c", "echo hi"], ["python", "-c", "import mcnn"],
                                  ["python3", "-V"], ["sh"], ["pip", "list"], ["nvidia-smi", "-L"],
                                  ["torchrun", "--nproc_per_node", "2", "/opt/mcnn/tools/train.py"]])
def test_programs_pass_through(args: list[str], torch_bin: Path) -> None:
    out = run_entrypoint(args, torch_bin)
    assert out.returncode == 0, out.stderr
    assert (out.program, out.args) == (args[0], args[1:])


def test_program_not_installed(caffe_bin: Path) -> None:
    out = run_entrypoint(["torchrun", "x.py"], caffe_bin)
    assert out.returncode == 127
    assert out.stderr == "mcnn: 'torchrun' is not installed in this image\n"


@pytest.mark.parametrize("args", [[], ["help"], ["-h"], ["--help"]])
def test_help_lists_every_command(args: list[str], torch_bin: Path) -> None:
    out = run_entrypoint(args, torch_bin, {"MCNN_ENGINE": "torch"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mcnn image (default engine: torch)\nusage: docker run")
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert set(EXPECTED_TABLE) <= listed
    assert "caffe" in listed and "help" in listed
    for program in ("bash", "python", "nvidia-smi", "convert_imageset"):
        assert program in out.stdout


@pytest.mark.parametrize("word", ["reproduce_all", "--engine", "Train", "docker"])
def test_unknown_command_fails_with_the_list(word: str, torch_bin: Path) -> None:
    out = run_entrypoint([word, "x"], torch_bin)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith(f"mcnn: unknown command '{word}'\n\nmcnn image")
    assert "reproduce" in out.stderr


@pytest.mark.parametrize(("home", "expected"), [("/", "/tmp"), ("", "/tmp"), ("/nonexistent", "/tmp")])
def test_unwritable_home_becomes_tmp(home: str, expected: str, torch_bin: Path) -> None:
    out = run_entrypoint(["python", "-V"], torch_bin, {"HOME": home})
    assert out.home == expected


def test_writable_home_is_kept(torch_bin: Path, tmp_path: Path) -> None:
    out = run_entrypoint(["python", "-V"], torch_bin, {"HOME": str(tmp_path)})
    assert out.home == str(tmp_path)
