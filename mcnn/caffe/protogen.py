"""Compile ``caffe.proto`` into the committed ``caffe_pb2.py`` and check it is current.

The Python module is generated with protoc 3.21 (from the pinned ``grpcio-tools`` wheel
below) because that generator emits "builder" code without a runtime version check: the
result imports with every protobuf runtime from 3.20 to 7.x, the range ``pyproject.toml``
declares. Newer generators stamp their own version and refuse older runtimes.

Regenerate with ``make proto`` (``python tools/gen_proto.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mcnn.errors import ProtocError

PROTO_DIR = Path(__file__).resolve().parent / "proto"
PROTO_FILE = PROTO_DIR / "caffe.proto"
MODULE_FILE = PROTO_DIR / "caffe_pb2.py"
#: Repository-relative import root: the descriptor is registered as
#: ``mcnn/caffe/proto/caffe.proto`` so it never clashes with pycaffe's ``caffe.proto``.
IMPORT_ROOT = PROTO_DIR.parents[2]
#: grpcio-tools release that bundles protoc 3.21.12.
GRPCIO_TOOLS_PIN = "grpcio-tools==1.53.2"



def _relative_proto() -> str:
    return PROTO_FILE.relative_to(IMPORT_ROOT).as_posix()


def _run_protoc(args: list[str], pythonpath: str | None = None) -> None:
    """Run grpc_tools' protoc in a subprocess (optionally from an isolated folder)."""
    code = (
        "import sys\n"
        "from grpc_tools import _protoc_compiler as c\n"
        "sys.exit(c.run_main([a.encode() for a in sys.argv[1:]]))\n"
    )
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run(
        [sys.executable, "-c", code, "protoc", *args],
        cwd=IMPORT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ProtocError(f"protoc failed: {(proc.stderr or proc.stdout).strip()}")


def pinned_protoc_path(cache_dir: Path) -> str:
    """Install the pinned grpcio-tools into ``cache_dir`` (once) and return its path.

    The wheel goes into its own folder (``pip --target``) so it never changes the
    protobuf version of the active environment.
    """
    target = cache_dir / GRPCIO_TOOLS_PIN.replace("==", "-")
    if not (target / "grpc_tools").is_dir():
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--target", str(target), GRPCIO_TOOLS_PIN],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise ProtocError(
                f"could not install {GRPCIO_TOOLS_PIN} into {target}: {proc.stderr.strip()}"
            )
    return str(target)


def generate_module(cache_dir: Path) -> Path:
    """Regenerate ``caffe_pb2.py`` from ``caffe.proto`` with the pinned protoc."""
    pythonpath = pinned_protoc_path(cache_dir)
    _run_protoc(["-I.", "--python_out=.", _relative_proto()], pythonpath=pythonpath)
    return MODULE_FILE


def compile_descriptor_set() -> bytes:
    """Compile ``caffe.proto`` with whatever grpc_tools is importable; return a FileDescriptorSet."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "caffe.desc"
        _run_protoc(["-I.", f"--descriptor_set_out={out}", _relative_proto()])
        return out.read_bytes()
