"""What makes a re-run into the same ``--out`` safe: the options state, completeness, leftovers.

A run records the options that decide the content of its outputs in ``OUT/.prepare.json``; a
later run with other options stops (or, with ``--force``, removes the old outputs first). A unit
counts as complete when its LMDB and sidecars exist (:mod:`mcnn.prep.write` renames the LMDB
last), and the temporary names a killed run left are removed before anything is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mcnn.datasets.base import Dataset
from mcnn.errors import ConfigError
from mcnn.prep import cache
from mcnn.prep.normalize import IntensityMapping
from mcnn.prep.options import PrepOptions
from mcnn.prep.prepared import BAD_REPORT, DATASET_JSON, LABELS, LINKS, NORMALIZATION, SPLITS, STATE, SplitPaths
from mcnn.prep.splits import Split
from mcnn.prep.write import remove_stale


def options_state(ds: Dataset, protocol: str, mapping: IntensityMapping, opts: PrepOptions) -> dict[str, Any]:
    """The options that decide the content of the outputs (a re-run must use the same).

    ``--skip-bad`` is not among them: an output completed without it holds no bad input, so it is
    the same with it (a run stops at the first bad input before writing anything it affects).
    """
    return {"dataset": ds.name, "protocol": protocol, "seed": opts.seed, "augment": opts.augment,
            "test_fraction": opts.test_fraction, "intensity": mapping.describe("uint16"),
            "resize": list(opts.resize) if opts.resize else None, "options": dict(ds.opts)}


def check_state(out: Path, state: dict[str, Any], force: bool) -> None:
    """Stop if ``out`` holds outputs of other options (``--force``: remove them instead).

    The caller writes ``state`` once the raw folder has been read.
    """
    path = out / STATE
    if force:
        clean(out)
    elif path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != state:
            before, after = _flat(old), _flat(state)
            changed = [k for k in after if before.get(k) != after[k]] or [k for k in before if k not in after]
            key = changed[0] if changed else "options"
            raise ConfigError(f"{out}: prepared earlier with other options ({key}: {before.get(key)!r} -> "
                              f"{after.get(key)!r}); use another --out or add --force")


def _flat(state: dict[str, Any]) -> dict[str, Any]:
    """The state with the dataset options as ``option <name>`` keys (so a message names the one that changed)."""
    flat = {k: v for k, v in state.items() if k != "options"}
    flat.update({f"option {k}": v for k, v in dict(state.get("options") or {}).items()})
    return flat


def clean(out: Path) -> None:
    """Remove everything a previous preparation wrote into ``out`` (only our own names)."""
    for name in (SPLITS, cache.CACHE):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("dose", "screen", "controls"):
        for p in (out / f"{name}_lmdb", out / f"{name}_index.csv"):
            remove_stale(p)
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    for name in (STATE, NORMALIZATION, LABELS, BAD_REPORT, DATASET_JSON, "screen.json", *LINKS):
        p = out / name
        if p.is_symlink() or p.is_file():
            p.unlink()


def remove_temporaries(out: Path) -> None:
    """Delete the temporary files a killed run left (``.<name>.tmp-<pid>``, ``.<link>.link-<pid>``)."""
    for folder in (out, *(out / SPLITS).glob("*")):
        if folder.is_dir():
            for p in folder.glob(".*"):
                if (".tmp-" in p.name or ".link-" in p.name) and (p.is_file() or p.is_symlink()):
                    p.unlink()


def unit_complete(lmdb: Path, index: Path, listfile: Path | None, mean: Path | None) -> bool:
    """True when the LMDB ``lmdb`` and its sidecars (index CSV, optional list file and mean) exist."""
    needed = [index, *(p for p in (listfile, mean) if p is not None)]
    return (lmdb / "data.mdb").is_file() and all(p.is_file() for p in needed)


def split_complete(out: Path, s: Split) -> bool:
    """True when both units of split ``s`` under ``OUT/splits/`` and its ``split.json`` exist."""
    paths = SplitPaths.of(out / SPLITS / s.name)
    return paths.split_json.is_file() and all(
        unit_complete(*args) for args in ((paths.train_lmdb, paths.train_index, paths.train_list, paths.mean),
                                          (paths.test_lmdb, paths.test_index, paths.test_list, None)))
