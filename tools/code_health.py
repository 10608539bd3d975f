#!/usr/bin/env python
"""Code-health figures of the package: module length, cyclomatic complexity, docstring coverage.

Examples:
  python tools/code_health.py              # the figures and every offender; exit 1 if a limit is broken
  python tools/code_health.py --list-missing

Limits (README, Development): no module over 400 lines, no function or method of cyclomatic
complexity over 20 (radon's count), docstrings on at least 95 % of the public functions, classes
and methods of ``mcnn/`` (interrogate's count; private names, ``__init__`` and magic methods,
nested functions and the generated ``caffe_pb2.py`` are not counted).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("mcnn", "tools", "data_prep", "bench")
GENERATED = ("mcnn/caffe/proto/caffe_pb2.py",)
MAX_LINES = 400
MAX_COMPLEXITY = 20
MIN_DOCSTRINGS = 95.0


@dataclass
class Health:
    """The measured figures and every place that breaks a limit."""

    long_modules: list[tuple[str, int]] = field(default_factory=list)
    complex_functions: list[tuple[str, str, int]] = field(default_factory=list)
    docstring_percent: float = 0.0
    missing_docstrings: list[tuple[str, str]] = field(default_factory=list)
    modules: int = 0
    functions: int = 0

    @property
    def ok(self) -> bool:
        """True when every limit holds."""
        return not self.long_modules and not self.complex_functions and self.docstring_percent >= MIN_DOCSTRINGS


def python_files(root: Path = ROOT) -> list[Path]:
    """The project's Python files (code, not tests), generated modules left out."""
    files = [p for d in CODE_DIRS for p in sorted((root / d).rglob("*.py"))]
    return [p for p in files if p.relative_to(root).as_posix() not in GENERATED and "__pycache__" not in p.parts]


def measure(root: Path = ROOT) -> Health:
    """Measure the tree under ``root`` with radon (complexity) and interrogate (docstrings)."""
    from interrogate.config import InterrogateConfig
    from interrogate.coverage import InterrogateCoverage
    from radon.complexity import cc_visit

    health = Health()
    for path in python_files(root):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        health.modules += 1
        if lines > MAX_LINES:
            health.long_modules.append((rel, lines))
        for block in cc_visit(text):
            if block.letter == "C":  # a class's figure is the mean of its methods, listed separately
                continue
            health.functions += 1
            if block.complexity > MAX_COMPLEXITY:
                name = f"{block.classname}.{block.name}" if getattr(block, "classname", None) else block.name
                health.complex_functions.append((f"{rel}:{block.lineno}", name, block.complexity))
    conf = InterrogateConfig(ignore_init_method=True, ignore_init_module=True, ignore_magic=True,
                             ignore_private=True, ignore_semiprivate=True, ignore_nested_functions=True,
                             ignore_nested_classes=True, ignore_module=True, ignore_overloaded_functions=True,
                             ignore_property_setters=True, fail_under=MIN_DOCSTRINGS)
    coverage = InterrogateCoverage(paths=[str(root / "mcnn")], conf=conf,
                                   excluded=tuple(str(root / g) for g in GENERATED))
    results = coverage.get_coverage()
    health.docstring_percent = results.perc_covered
    for file_result in results.file_results:
        rel = Path(file_result.filename).resolve().relative_to(root.resolve()).as_posix()
        for node in file_result.nodes:
            if not node.covered and node.node_type != "Module":
                health.missing_docstrings.append((f"{rel}:{node.lineno}", node.name))
    return health


def get_args_parser() -> argparse.ArgumentParser:
    """The script's options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list-missing", action="store_true", help="list every public name without a docstring")
    return p


def main(args: argparse.Namespace) -> int:
    """Print the figures and offenders; 0 when every limit holds, else 1."""
    h = measure()
    print(f"{h.modules} modules, {h.functions} functions and methods under {', '.join(CODE_DIRS)}/")
    print(f"modules over {MAX_LINES} lines: {len(h.long_modules)}")
    for rel, lines in h.long_modules:
        print(f"  {rel}: {lines} lines")
    print(f"functions of cyclomatic complexity over {MAX_COMPLEXITY}: {len(h.complex_functions)}")
    for where, name, cc in h.complex_functions:
        print(f"  {where} {name}: {cc}")
    print(f"docstrings on public functions, classes and methods of mcnn/: {h.docstring_percent:.1f}% "
          f"(limit {MIN_DOCSTRINGS:g}%, {len(h.missing_docstrings)} missing)")
    if args.list_missing:
        for where, name in h.missing_docstrings:
            print(f"  {where} {name}")
    print("ok" if h.ok else "limits broken")
    return 0 if h.ok else 1


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
