"""The one way tests run a command-line script of the checkout (this interpreter, captured output) and import one."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str | os.PathLike[str], *args: str | os.PathLike[str], cwd: Path | None = None,
               env: Mapping[str, str] | None = None, timeout: float | None = None,
               extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (a path relative to the checkout, e.g. ``tools/train.py``) with ``args``.

    ``env`` replaces the environment, ``extra_env`` is added to it; the working directory is
    ``cwd`` (default the checkout). Returns the completed process with text stdout/stderr.
    """
    full_env = dict(os.environ if env is None else env)
    full_env.update(extra_env or {})
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=full_env, timeout=timeout)


def load_script(script: str | os.PathLike[str], name: str) -> ModuleType:
    """Import the checkout's ``script`` (e.g. ``bench/vs_caffe.py``) as the module ``name``, registered in
    ``sys.modules`` so that dataclasses and pickling inside it work; the one way tests load a script."""
    spec = importlib.util.spec_from_file_location(name, ROOT / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module
