"""HPA metadata as MATLAB v7.3 .mat files (HDF5 inside), read with h5py like the v5 files scipy reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from mcnn.datasets import hpa
from mcnn.errors import DatasetLayoutError
from tests.support.lookalikes import lookalike


def _char(handle: h5py.File, name: str, text: str, group: h5py.Group | None = None) -> h5py.Dataset:
    # MATLAB: a 1 x n char array, stored column-major as an n x 1 uint16 dataset
    codes = np.array([[ord(c)] for c in text] or [[0]], dtype=np.uint16)
    ds = (group or handle).create_dataset(name, data=codes)
    ds.attrs["MATLAB_class"] = np.bytes_("char")
    return ds


def _write(handle: h5py.File, name: str, value: Any) -> None:
    """One variable of a scipy-loaded v5 file in MATLAB's v7.3 layout (transposed; cells as references)."""
    value = np.asarray(value)
    if value.dtype == object:
        refs = handle.require_group("#refs#")
        out = np.empty(value.shape, dtype=h5py.ref_dtype)
        for index, item in np.ndenumerate(value):
            text = str(np.asarray(item).ravel()[0]) if np.asarray(item).size else ""
            out[index] = _char(handle, f"{name}_{len(refs)}", text, refs).ref
        ds = handle.create_dataset(name, data=out.T, dtype=h5py.ref_dtype)
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
    else:
        ds = handle.create_dataset(name, data=value.T.astype(np.float64))
        ds.attrs["MATLAB_class"] = np.bytes_("double")


def _v73_copy(source: Path, target: Path) -> Path:
    from scipy.io import loadmat

    mat = {k: v for k, v in loadmat(str(source)).items() if not k.startswith("__")}
    with h5py.File(target, "w", userblock_size=512) as handle:  # MATLAB's 512-byte header before the HDF5 data
        for name, value in mat.items():
            _write(handle, name, value)
    with open(target, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Dec  1 00:00:00 2026 HDF5 schema 1.00 .")
    return target


def test_v73_info_reads_like_the_v5_file(tmp_path: Path) -> None:
    v5 = lookalike("hpa") / hpa.INFO
    v73 = _v73_copy(v5, tmp_path / hpa.INFO)
    assert not v73.read_bytes().startswith(b"\x89HDF")  # the header, as MATLAB writes it
    new, old = hpa.read_info(v73), hpa.read_info(v5)
    assert new == old
    assert len(new["labels"]) > 0 and new["lists"]["readlist"][0].endswith("_green.tif")
    mat = hpa.load_mat(v73)
    assert mat["antibodyids"].shape == hpa.load_mat(v5)["antibodyids"].shape  # MATLAB's 1 x n or n x 1, not transposed


def test_v73_arrays_are_transposed_back(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:
        # a MATLAB 2 x 3 double [1 2 3; 4 5 6] is stored column-major: a 3 x 2 dataset
        handle.create_dataset("m", data=np.array([[1, 4], [2, 5], [3, 6]], dtype=np.float64))
        handle["m"].attrs["MATLAB_class"] = np.bytes_("double")
        _char(handle, "name", "Golgi")
        empty = handle.create_dataset("none", data=np.array([0, 0], dtype=np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_("cell")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        handle.create_group("s").attrs["MATLAB_class"] = np.bytes_("struct")
    with pytest.raises(DatasetLayoutError, match=r"m.mat: variable s: a MATLAB struct"):
        hpa.load_mat(path)
    with h5py.File(path, "a") as handle:
        del handle["s"]
    mat = hpa.load_mat(path)
    np.testing.assert_array_equal(mat["m"], [[1, 2, 3], [4, 5, 6]])
    assert mat["name"] == "Golgi" and mat["none"].size == 0
