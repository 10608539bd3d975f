"""docker/build_caffe.sh without Docker, network or compiler: patches, CMake line, protoc step."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mcnn.caffe import protogen
from mcnn.errors import ProtocError
from tests.docker.common import BUILD_CAFFE, DOCKER, load_check_image, make_fake_bin, make_fake_home, run_script
from tests.support import ROOT

# A fake Caffe tree: the lines the patches are for (as in BVLC Caffe @ 9b89154), and what they become.
BEFORE = {
    "src/caffe/util/io.cpp": (
        "  CodedInputStream* coded_input = new CodedInputStream(raw_input);\n"
        "  coded_input->SetTotalBytesLimit(kProtoReadBytesLimit, 536870912);\n"
        "  int cv_read_flag = (is_color ? CV_LOAD_IMAGE_COLOR :\n"
        "    CV_LOAD_IMAGE_GRAYSCALE);\n"
    ),
    "src/caffe/layers/window_data_layer.cpp": "    cv_img = cv::imread(image.first, CV_LOAD_IMAGE_COLOR);\n",
    "src/caffe/test/test_io.cpp": (
        "  cv::Mat cv_img = cv::imread(filename, CV_LOAD_IMAGE_UNCHANGED);\n"
        "  cv::Mat depth = cv::imread(filename, CV_LOAD_IMAGE_ANYDEPTH | CV_LOAD_IMAGE_ANYCOLOR);\n"
    ),
    "python/caffe/io.py": "    img = skimage.img_as_float(skimage.io.imread(filename, as_grey=not color))\n",
    "src/caffe/blob.cpp": "// SetTotalBytesLimit(x) is already fine; CV_LOAD_IMAGE is text only.\n",
    "CMakeLists.txt": '  set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} -fPIC -Wall -std=c++11")\n',
}
AFTER = {
    "src/caffe/util/io.cpp": (
        "  CodedInputStream* coded_input = new CodedInputStream(raw_input);\n"
        "  coded_input->SetTotalBytesLimit(kProtoReadBytesLimit);\n"
        "  int cv_read_flag = (is_color ? cv::IMREAD_COLOR :\n"
        "    cv::IMREAD_GRAYSCALE);\n"
    ),
    "src/caffe/layers/window_data_layer.cpp": "    cv_img = cv::imread(image.first, cv::IMREAD_COLOR);\n",
    "src/caffe/test/test_io.cpp": (
        "  cv::Mat cv_img = cv::imread(filename, cv::IMREAD_UNCHANGED);\n"
        "  cv::Mat depth = cv::imread(filename, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);\n"
    ),
    "python/caffe/io.py": "    img = skimage.img_as_float(skimage.io.imread(filename, as_gray=not color))\n",
    "src/caffe/blob.cpp": BEFORE["src/caffe/blob.cpp"],
    "CMakeLists.txt": '  set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} -fPIC -Wall -std=c++14")\n',
}

# A small proto2 schema of ours with Caffe's package, message names and field numbers, standing in
# for src/caffe/proto/caffe.proto.
MINI_PROTO = """syntax = "proto2";
package caffe;
message ConvolutionParameter {
  optional uint32 num_output = 1;
  repeated uint32 kernel_size = 4;
}
message LayerParameter {
  optional string name = 1;
  optional string type = 2;
  repeated string bottom = 3;
  repeated string top = 4;
  optional ConvolutionParameter convolution_param = 106;
}
message NetParameter {
  optional string name = 1;
  repeated LayerParameter layer = 100;
}
"""


def fake_tree(root: Path, files: dict[str, str] = BEFORE) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "src/caffe/proto").mkdir(parents=True, exist_ok=True)
    (root / "src/caffe/proto/caffe.proto").write_text(MINI_PROTO)
    return root


def read_tree(root: Path) -> dict[str, str]:
    return {rel: (root / rel).read_text() for rel in BEFORE}


def commands(stdout: str) -> list[list[str]]:
    """The commands a run printed (the "+ " lines), split into words."""
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def cmake_configure(stdout: str) -> list[str]:
    found = [c for c in commands(stdout) if c[:2] == ["cmake", "-S"]]
    assert len(found) == 1, stdout
    return found[0]


def dry_run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    src = fake_tree(tmp_path / "caffe")
    base = {"CAFFE_SRC": str(src), "PREFIX": str(tmp_path / "prefix"), "WORK_DIR": str(tmp_path / "work"),
            "PYTHON": sys.executable, "PYCAFFE_PROTOC": "protoc"}
    out = run_script("--dry-run", env={**base, **env})
    assert out.returncode == 0, out.stderr
    assert read_tree(src) == BEFORE, "--dry-run changed the sources"
    assert not (tmp_path / "prefix").exists() and not (tmp_path / "work").exists()
    return out


def test_syntax() -> None:
    assert subprocess.run(["bash", "-n", str(BUILD_CAFFE)]).returncode == 0


def test_help() -> None:
    out = run_script("--help")
    assert out.returncode == 0
    for word in ("CAFFE_SRC", "CPU_ONLY", "--patch-only", "--dry-run", "--install-deps", "USE_NCCL", "PREFIX"):
        assert word in out.stdout
    assert "set -euo" not in out.stdout


def test_unknown_option() -> None:
    out = run_script("--fast")
    assert out.returncode == 1
    assert out.stderr == "build_caffe: error: unknown option '--fast' (see --help)\n"


def test_patch_only_makes_exactly_the_edits(tmp_path: Path) -> None:
    src = fake_tree(tmp_path / "caffe")
    untouched = (src / "src/caffe/blob.cpp").stat().st_mtime_ns
    out = run_script("--patch-only", env={"CAFFE_SRC": str(src)})
    assert out.returncode == 0, out.stderr
    assert read_tree(src) == AFTER
    assert (src / "src/caffe/blob.cpp").stat().st_mtime_ns == untouched
    for line in ("patch protobuf>=3.20 SetTotalBytesLimit: src/caffe/util/io.cpp",
                 "patch OpenCV 4 CV_LOAD_IMAGE_*: src/caffe/layers/window_data_layer.cpp",
                 "patch OpenCV 4 CV_LOAD_IMAGE_*: src/caffe/test/test_io.cpp",
                 "patch OpenCV 4 CV_LOAD_IMAGE_*: src/caffe/util/io.cpp",
                 "patch scikit-image as_grey: python/caffe/io.py",
                 "patch CUDA 12 C++14: CMakeLists.txt"):
        assert f"build_caffe: {line}\n" in out.stderr
    assert len([c for c in commands(out.stdout) if c[:3] == ["sed", "-E", "-i"]]) == 6

    again = run_script("--patch-only", env={"CAFFE_SRC": str(src)})
    assert again.returncode == 0, again.stderr
    assert read_tree(src) == AFTER
    assert again.stdout == ""
    assert again.stderr.count(": nothing to change\n") == 4


def test_patch_only_dry_run_changes_nothing(tmp_path: Path) -> None:
    src = fake_tree(tmp_path / "caffe")
    out = run_script("--patch-only", "--dry-run", env={"CAFFE_SRC": str(src)})
    assert out.returncode == 0, out.stderr
    assert read_tree(src) == BEFORE
    assert len(commands(out.stdout)) == 6


def test_patch_stops_on_what_it_cannot_fix(tmp_path: Path) -> None:
    src = fake_tree(tmp_path / "caffe", {**BEFORE, "tools/extra.cpp": "int flag = CV_LOAD_IMAGE_REDUCED_2;\n"})
    out = run_script("--patch-only", env={"CAFFE_SRC": str(src)})
    assert out.returncode == 1
    assert "tools/extra.cpp:1:int flag = CV_LOAD_IMAGE_REDUCED_2;" in out.stderr
    assert out.stderr.endswith("build_caffe: error: the lines above still need a change by hand\n")


def test_patch_only_needs_a_source(tmp_path: Path) -> None:
    out = run_script("--patch-only", env={"CAFFE_SRC": ""})
    assert out.returncode == 1 and "--patch-only needs CAFFE_SRC" in out.stderr
    out = run_script("--patch-only", env={"CAFFE_SRC": str(tmp_path / "nope")})
    assert out.returncode == 1 and "is not a folder" in out.stderr


COMMON_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DUSE_CUDNN=OFF", "-DBUILD_python=ON", "-DBUILD_python_layer=ON",
                "-Dpython_version=3", f"-DPYTHON_EXECUTABLE={sys.executable}", "-DBLAS=Open",
                "-DUSE_OPENCV=ON", "-DUSE_LMDB=ON", "-DUSE_LEVELDB=ON", "-DBUILD_docs=OFF"]


def test_dry_run_cpu_only(tmp_path: Path) -> None:
    out = dry_run(tmp_path, CPU_ONLY="1")
    cmake = cmake_configure(out.stdout)
    assert cmake[:5] == ["cmake", "-S", str(tmp_path / "caffe"), "-B", str(tmp_path / "work/build")]
    for flag in [*COMMON_FLAGS, "-DCPU_ONLY=ON", "-DUSE_NCCL=OFF", f"-DCMAKE_INSTALL_PREFIX={tmp_path / 'prefix'}"]:
        assert flag in cmake
    assert not [w for w in cmake if w.startswith("-DCUDA_")]
    assert ["cmake", "--build", str(tmp_path / "work/build"), "--target", "install"] in commands(out.stdout)


def test_dry_run_gpu(tmp_path: Path) -> None:
    out = dry_run(tmp_path, USE_NCCL="1")
    cmake = cmake_configure(out.stdout)
    for flag in [*COMMON_FLAGS, "-DCPU_ONLY=OFF", "-DUSE_NCCL=ON", "-DCUDA_ARCH_NAME=Manual",
                 "-DCUDA_ARCH_BIN=60 61 70 75 80 86 89 90", "-DCUDA_ARCH_PTX=90"]:
        assert flag in cmake
    assert "-DCPU_ONLY=ON" not in cmake


@pytest.mark.parametrize(("use_nccl", "flag"), [("0", "-DUSE_NCCL=OFF"), ("off", "-DUSE_NCCL=OFF"),
                                                ("1", "-DUSE_NCCL=ON"), ("auto", "-DUSE_NCCL=ON")])
def test_dry_run_nccl(use_nccl: str, flag: str, tmp_path: Path) -> None:
    nccl = tmp_path / "nccl"
    (nccl / "include").mkdir(parents=True)
    (nccl / "include/nccl.h").write_text("")
    cmake = cmake_configure(dry_run(tmp_path, USE_NCCL=use_nccl, NCCL_ROOT=str(nccl)).stdout)
    assert flag in cmake
    assert f"-DNCCL_INCLUDE_DIR={nccl}/include" in cmake


def test_dry_run_architectures(tmp_path: Path) -> None:
    cmake = cmake_configure(dry_run(tmp_path, CUDA_ARCH_BIN="90", CUDA_ARCH_PTX="90").stdout)
    assert "-DCUDA_ARCH_BIN=90" in cmake


@pytest.mark.parametrize(("arch", "message"), [("sm_90", "expected numbers"), ("90 120", "containing 20")])
def test_bad_architectures_stop(arch: str, message: str, tmp_path: Path) -> None:
    src = fake_tree(tmp_path / "caffe")
    out = run_script("--dry-run", env={"CAFFE_SRC": str(src), "CUDA_ARCH_BIN": arch, "PYTHON": sys.executable})
    assert out.returncode == 1
    assert message in out.stderr


def test_dry_run_without_source_fetches_the_pinned_commit(tmp_path: Path) -> None:
    out = run_script("--dry-run", env={"CAFFE_SRC": "", "WORK_DIR": str(tmp_path / "w"), "CPU_ONLY": "1",
                                       "PYTHON": sys.executable, "PYCAFFE_PROTOC": "protoc"})
    assert out.returncode == 0, out.stderr
    cmds = commands(out.stdout)
    src = str(tmp_path / "w/src")
    assert ["git", "-C", src, "fetch", "-q", "--depth", "1", "https://github.com/BVLC/caffe.git",
            "9b891540183ddc834a02b2bd81b31afae71b2153"] in cmds
    assert cmake_configure(out.stdout)[2] == src


def protoc_commands(tmp_path: Path, version: str) -> list[list[str]]:
    fake = make_fake_bin(tmp_path / "bin", ())
    (fake / "protoc").write_text(f"#!/bin/sh\necho 'libprotoc {version}'\n")
    (fake / "protoc").chmod(0o755)
    out = dry_run(tmp_path, CPU_ONLY="1", PYCAFFE_PROTOC="", PATH=f"{fake}:{os.environ['PATH']}")
    proto_dir = str(tmp_path / "caffe/src/caffe/proto")
    return [c for c in commands(out.stdout) if f"-I{proto_dir}" in c or "pip" in c]


def test_system_protoc_3_21_is_used(tmp_path: Path) -> None:
    proto_dir = tmp_path / "caffe/src/caffe/proto"
    assert protoc_commands(tmp_path, "3.21.12") == [
        ["protoc", f"-I{proto_dir}", f"--python_out={tmp_path}/prefix/python/caffe/proto", f"{proto_dir}/caffe.proto"]]


def test_old_system_protoc_is_replaced_by_the_pinned_one(tmp_path: Path) -> None:
    pip, protoc = protoc_commands(tmp_path, "3.12.4")
    target = str(tmp_path / "work/grpcio-tools-1.53.2")
    assert pip == [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target,
                   protogen.GRPCIO_TOOLS_PIN]
    assert protoc[:3] == ["env", f"PYTHONPATH={target}", sys.executable]
    assert protoc[-4:-2] == ["protoc", f"-I{tmp_path}/caffe/src/caffe/proto"]


def test_pinned_protoc_is_the_toolkits() -> None:
    text = BUILD_CAFFE.read_text()
    assert re.search(r"^GRPC_TOOLS_PIN=(\S+)$", text, flags=re.M).group(1) == protogen.GRPCIO_TOOLS_PIN


def test_install_deps_dry_run_lists_the_packages(tmp_path: Path) -> None:
    out = run_script("--install-deps", "--dry-run")
    assert out.returncode == 0, out.stderr
    install = [c for c in commands(out.stdout) if "install" in c and "apt-get" in c]
    assert len(install) == 1
    listed = [line.split("#")[0].strip() for line in (DOCKER / "caffe-apt-packages.txt").read_text().splitlines()]
    packages = [p for p in listed if p]
    assert install[0][-len(packages):] == packages
    assert "--no-install-recommends" in install[0]
    for needed in ("cmake", "git", "libboost-python-dev", "libprotobuf-dev", "protobuf-compiler", "libopencv-dev",
                   "libopenblas-dev", "libhdf5-dev", "liblmdb-dev", "libleveldb-dev", "libgoogle-glog-dev",
                   "python3-dev", "python3-venv"):
        assert needed in packages


@pytest.fixture(scope="module")
def pinned_grpc_tools() -> str:
    try:
        return protogen.pinned_protoc_path((ROOT / ".cache").resolve())
    except ProtocError as exc:
        pytest.skip(f"the pinned protoc could not be installed: {exc}")


def test_proto_only_module_imports_beside_the_toolkit(pinned_grpc_tools: str, tmp_path: Path) -> None:
    """pycaffe's regenerated caffe_pb2 and the toolkit's schema, one process, this protobuf."""
    src = fake_tree(tmp_path / "caffe")
    prefix = tmp_path / "prefix"
    out = run_script("--proto-only", env={"CAFFE_SRC": str(src), "PREFIX": str(prefix), "PYTHON": sys.executable,
                                          "GRPC_TOOLS_DIR": pinned_grpc_tools, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    module = prefix / "python/caffe/proto/caffe_pb2.py"
    assert "import builder" in module.read_text()
    assert "pycaffe caffe_pb2.py regenerated and imported" in out.stderr

    # check_image.py caffe with a stand-in pycaffe package around the generated module.
    (prefix / "python/caffe/__init__.py").write_text('__version__ = "stand-in"\n')
    fake_bin = make_fake_bin(tmp_path / "bin", ("caffe",))
    home = make_fake_home(tmp_path / "mcnn")
    check = subprocess.run(
        [sys.executable, str(DOCKER / "check_image.py"), "caffe", "--home", str(home)],
        capture_output=True, text=True, timeout=120,
        env={"PATH": f"{fake_bin}:/usr/bin:/bin", "PYTHONPATH": f"{prefix / 'python'}:{ROOT}"},
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "check_image: the caffe image is complete" in check.stdout


def test_check_image_catches_a_schema_mismatch(pinned_grpc_tools: str, tmp_path: Path) -> None:
    src = fake_tree(tmp_path / "caffe")
    proto = src / "src/caffe/proto/caffe.proto"
    proto.write_text(MINI_PROTO.replace("optional uint32 num_output = 1;", "optional uint32 num_output = 2;"))
    prefix = tmp_path / "prefix"
    out = run_script("--proto-only", env={"CAFFE_SRC": str(src), "PREFIX": str(prefix), "PYTHON": sys.executable,
                                          "GRPC_TOOLS_DIR": pinned_grpc_tools, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    (prefix / "python/caffe/__init__.py").write_text("")
    check_image = load_check_image()
    code = (f"import sys; sys.path[:0] = [{str(prefix / 'python')!r}, {str(ROOT)!r}]; "
            f"sys.path.insert(0, {str(DOCKER)!r}); import check_image; print(check_image.check_caffe())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "does not read back identically" in proc.stdout
    assert "the caffe binary is not on PATH" in proc.stdout
    assert check_image.command_table()
