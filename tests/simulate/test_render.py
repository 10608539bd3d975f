"""Rendering one field: image model, labels, and the planted phenotypes seen in the pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mcnn.simulate.cells import sample_field
from mcnn.simulate.config import CONTROL, Appearance
from mcnn.simulate.measure import background_level, measure_cells
from mcnn.simulate.render import FieldNuisance, draw_nuisance, render_field

APPEARANCE = Appearance()


def _render(phenotype: str, fraction: float, seed: int, appearance: Appearance = APPEARANCE, size: int = 128):
    rng = np.random.default_rng(seed)
    state = sample_field(rng, phenotype, fraction, 14 * size * size / 128**2, size, size, appearance)
    return state, render_field(state.cells, size, size, draw_nuisance(rng, appearance), appearance, rng)


def test_shapes_types_and_labels() -> None:
    state, field = _render("spots", 0.5, 0, size=96)
    assert field.image.shape == (2, 96, 96) and field.image.dtype == np.uint16
    assert field.expected.shape == (2, 96, 96) and field.expected.dtype == np.float32
    assert field.cell_labels.shape == field.nucleus_labels.shape == (96, 96)
    labels = set(np.unique(field.cell_labels)) - {0}
    assert labels <= set(range(1, len(state.cells) + 1))
    assert len(labels) >= len(state.cells) - 2  # every cell visible (a few may be hidden at the border)
    # Nuclei lie inside their cell body for the most part.
    for index in labels:
        nucleus = field.nucleus_labels == index
        if nucleus.sum() > 10:
            assert (field.cell_labels[nucleus] == index).mean() > 0.8


def test_same_generator_same_pixels() -> None:
    a = _render("translocation", 0.5, 3)[1]
    b = _render("translocation", 0.5, 3)[1]
    assert np.array_equal(a.image, b.image) and np.array_equal(a.cell_labels, b.cell_labels)
    assert not np.array_equal(a.image, _render("translocation", 0.5, 4)[1].image)


def test_dynamic_range_is_realistic() -> None:
    """Background about 100-300 ADU, cell signals up to a few thousand, never saturated."""
    for seed in range(4):
        _, field = _render(CONTROL, 0.0, seed)
        for plane in field.image:
            background = background_level(plane, field.cell_labels)
            assert 100 <= background <= 300
            assert 1000 < plane.max() < 10000
        assert np.percentile(field.image[0][field.nucleus_labels > 0], 50) > 1000


def test_noise_free_rendering_is_the_expected_image() -> None:
    quiet = dataclasses.replace(APPEARANCE, noise=False)
    _, field = _render("elongation", 1.0, 5, quiet)
    assert np.array_equal(field.image, np.clip(np.rint(field.expected), 0, 65535).astype(np.uint16))
    # With noise: Poisson + read noise around the expected image, the variance grows with the signal.
    _, noisy = _render("elongation", 1.0, 5)
    residual = noisy.image.astype(np.float64) - noisy.expected
    assert abs(residual.mean()) < 1.0
    bright = noisy.expected > 1500
    dim = noisy.expected < 300
    assert residual[bright].std() > 2 * residual[dim].std()


def test_illumination_map() -> None:
    flat = FieldNuisance().illumination(64, 64)
    assert np.allclose(flat, 1.0)
    ramp = FieldNuisance(gradient=0.3, gradient_angle=0.0).illumination(64, 64)
    assert ramp[:, -1].mean() > ramp[:, 0].mean() and ramp.mean() == pytest.approx(1.0, abs=0.01)
    vignette = FieldNuisance(vignetting=0.15).illumination(64, 64)
    assert vignette[32, 32] > vignette[0, 0] == pytest.approx(0.85, abs=0.01)


def _measured(phenotype: str, fraction: float, seeds: range):
    """Per-cell measurements with the planted state of each measured cell."""
    rows, planted = [], []
    for seed in seeds:
        state, field = _render(phenotype, fraction, seed)
        m = measure_cells(field.image, field.cell_labels, field.nucleus_labels)
        rows.append(m)
        planted.extend(state.cells[label - 1].phenotype == phenotype for label in m["label"])
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}, np.array(planted)


# Measurement and threshold that call a cell "showing the phenotype" from its pixels.
CALLS = {
    "translocation": lambda m: m["nuc_cyto_ratio"] > 1.2,
    "spots": lambda m: m["spots"] >= 2,
    "elongation": lambda m: m["aspect_ratio"] > 1.85,
    "fragmentation": lambda m: m["fragments"] >= 2,
}


@pytest.mark.parametrize("phenotype", list(CALLS))
def test_phenotype_is_seen_in_proportion_to_the_planted_fraction(phenotype: str) -> None:
    call = CALLS[phenotype]
    shares = {}
    for fraction in (0.0, 0.5, 1.0):
        m, planted = _measured(phenotype, fraction, range(100, 106))
        called = call(m)
        assert len(called) > 50
        # Cell by cell, the image statistic agrees with the planted state.
        assert (called == planted).mean() > 0.85, (fraction, (called == planted).mean())
        shares[fraction] = (called.mean(), planted.mean())
    assert shares[0.0][0] < 0.1 and shares[1.0][0] > 0.85
    called_half, planted_half = shares[0.5]
    assert 0.3 < planted_half < 0.7 and abs(called_half - planted_half) < 0.12


def test_density_lowers_the_cell_count() -> None:
    counts = {}
    for fraction in (0.0, 0.5, 1.0):
        counts[fraction] = np.mean([len(set(np.unique(_render("density", fraction, s)[1].cell_labels)) - {0})
                                    for s in range(6)])
    assert counts[0.0] > counts[0.5] > counts[1.0]
    assert counts[1.0] < 0.45 * counts[0.0]
