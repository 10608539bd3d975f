"""The house rules of the package: import layers, code-health limits, and a map that matches the tree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import mcnn
from tests.support import ROOT, run_script
from tests.support.scripts import load_script


def package_parts() -> list[str]:
    """``mcnn/<sub>/`` packages and top-level ``mcnn/<module>.py`` files, as ``mcnn/<name>``."""
    parts = []
    for path in sorted((ROOT / "mcnn").iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file():
            parts.append(f"mcnn/{path.name}/")
        elif path.suffix == ".py" and path.name != "__init__.py":
            parts.append(f"mcnn/{path.name}")
    return parts


def test_import_layers_hold() -> None:
    """No module imports from a layer above its own (pyproject.toml, [tool.importlinter])."""
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.is_file(), "import-linter is a test dependency (pip install -e '.[test]')"
    out = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout


def test_code_health_limits_hold() -> None:
    """No module over 400 lines, no function over complexity 20, docstrings on >= 95 % (tools/code_health.py)."""
    out = run_script("tools/code_health.py")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "modules over 400 lines: 0" in out.stdout
    assert "functions of cyclomatic complexity over 20: 0" in out.stdout
    percent = float(re.search(r"mcnn/: ([\d.]+)%", out.stdout).group(1))  # type: ignore[union-attr]
    assert percent >= 95.0


def test_code_health_finds_an_offender(tmp_path: Path) -> None:
    """The measurement is real: a long, complex, undocumented module is reported."""
    code_health = load_script("tools/code_health.py", "code_health")
    (tmp_path / "mcnn").mkdir()
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(25))
    filler = "".join(f"Y{i} = {i}\n" for i in range(400))
    (tmp_path / "mcnn" / "bad.py").write_text(f'"""A bad module."""\n\n\ndef f(x):\n{branches}    return -1\n{filler}')
    health = code_health.measure(tmp_path)
    assert [name for _, name, _ in health.complex_functions] == ["f"]
    assert health.complex_functions[0][2] == 26
    assert health.long_modules == [("mcnn/bad.py", 455)]
    assert health.docstring_percent == 0.0 and not health.ok


def test_readme_layout_table_matches_the_tree() -> None:
    """Every package and top-level module of mcnn/ has a row in the README's Layout table, and
    every mcnn path the table names exists."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(mcnn/[\w/.]+)`", section))
    missing = [part for part in package_parts() if part not in named]
    assert not missing, f"README Layout lacks {missing}"
    stale = [path for path in named if not (ROOT / path).exists()]
    assert not stale, f"README Layout names paths that do not exist: {stale}"


def test_package_map_matches_the_tree() -> None:
    """``mcnn/__init__.py``'s package map names every package and top-level module."""
    doc = mcnn.__doc__ or ""
    named = set(re.findall(r"``(mcnn(?:\.\w+)+)``", doc))
    expected = {"mcnn." + part.removeprefix("mcnn/").removesuffix("/").removesuffix(".py")
                for part in package_parts()}
    assert expected <= named, f"package map lacks {sorted(expected - named)}"
    assert not named - expected, f"package map names what is not there: {sorted(named - expected)}"
