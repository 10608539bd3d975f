"""Per-cell phenotype states: Bernoulli draws with the Hill probability, geometry of each phenotype."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcnn.simulate.cells import (
    CONTROL_NUC_RATIO,
    DENSITY_LOSS,
    draw_cell,
    place_cells,
    sample_field,
)
from mcnn.simulate.config import CONTROL, Appearance
from mcnn.simulate.hill import hill_fraction

APPEARANCE = Appearance()


def _cells(phenotype: str, n: int = 300, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [draw_cell(rng, APPEARANCE, phenotype) for _ in range(n)]


def test_same_seed_same_field() -> None:
    a = sample_field(np.random.default_rng(7), "spots", 0.5, 14, 128, 128, APPEARANCE)
    b = sample_field(np.random.default_rng(7), "spots", 0.5, 14, 128, 128, APPEARANCE)
    assert len(a.cells) == len(b.cells) and a.n_affected == b.n_affected
    for x, y in zip(a.cells, b.cells, strict=True):
        assert (x.x, x.y, x.a, x.b, x.nuc_ratio, x.phenotype) == (y.x, y.y, y.a, y.b, y.nuc_ratio, y.phenotype)
        assert np.array_equal(x.spots, y.spots)
    c = sample_field(np.random.default_rng(8), "spots", 0.5, 14, 128, 128, APPEARANCE)
    assert [x.x for x in c.cells] != [x.x for x in a.cells]


@pytest.mark.parametrize("phenotype", ["translocation", "spots", "elongation", "fragmentation"])
def test_fraction_of_affected_cells_follows_the_hill_curve(phenotype: str) -> None:
    """Pooled over many fields, the share of cells showing the phenotype matches f(x)."""
    rng = np.random.default_rng(11)
    ec50, slope = 0.5, 1.5
    for concentration in (0.1, 0.5, 2.0):
        expected = hill_fraction(concentration, ec50, slope)
        fields = [sample_field(rng, phenotype, expected, 14, 128, 128, APPEARANCE) for _ in range(30)]
        cells = [c for f in fields for c in f.cells]
        shown = np.mean([c.phenotype == phenotype for c in cells])
        se = math.sqrt(expected * (1 - expected) / len(cells))
        assert abs(shown - expected) < 4 * se + 0.01, (concentration, shown, expected)
        for f in fields:  # the per-field truth is the realised share of its cells
            assert f.affected_fraction == pytest.approx(np.mean([c.phenotype == phenotype for c in f.cells]))
            assert f.expected_fraction == expected


def test_controls_and_extremes() -> None:
    rng = np.random.default_rng(3)
    control = sample_field(rng, CONTROL, 1.0, 14, 128, 128, APPEARANCE)
    assert control.n_affected == 0 and control.affected_fraction == 0.0 and control.expected_fraction == 0.0
    assert all(c.phenotype == CONTROL and c.strength == 0.0 for c in control.cells)
    none = sample_field(rng, "spots", 0.0, 14, 128, 128, APPEARANCE)
    assert none.n_affected == 0
    every = sample_field(rng, "elongation", 1.0, 14, 128, 128, APPEARANCE)
    assert every.affected_fraction == 1.0 and all(0.5 <= c.strength <= 1.0 for c in every.cells)
    with pytest.raises(ValueError, match="fraction"):
        sample_field(rng, "spots", 1.5, 14, 128, 128, APPEARANCE)


def test_density_detaches_most_affected_cells() -> None:
    rng = np.random.default_rng(5)
    fields = [sample_field(rng, "density", 1.0, 14, 128, 128, APPEARANCE) for _ in range(40)]
    seeded = sum(f.n_seeded for f in fields)
    lost = sum(f.n_lost for f in fields)
    assert lost / seeded == pytest.approx(DENSITY_LOSS, abs=0.06)
    assert all(f.affected_fraction == 1.0 for f in fields if f.n_seeded)
    survivors = [c for f in fields for c in f.cells]
    assert all(c.phenotype == "density" for c in survivors)
    assert np.mean([math.sqrt(c.a * c.b) for c in survivors]) < 0.8 * APPEARANCE.cell_radius


def test_phenotype_parameters_are_separated_from_controls() -> None:
    control = _cells(CONTROL)
    control_ratio = np.array([c.nuc_ratio for c in control])
    assert np.median(control_ratio) == pytest.approx(CONTROL_NUC_RATIO, rel=0.1)
    translocated = np.array([c.nuc_ratio for c in _cells("translocation")])
    assert np.percentile(translocated, 5) > np.percentile(control_ratio, 95)
    control_aspect = np.array([c.aspect_ratio for c in control])
    elongated = np.array([c.aspect_ratio for c in _cells("elongation")])
    assert np.median(control_aspect) < 1.6 and np.median(elongated) > 2.4
    assert np.percentile(elongated, 5) > np.percentile(control_aspect, 90)
    control_spots = np.array([len(c.spots) for c in control])
    spotted = np.array([len(c.spots) for c in _cells("spots")])
    assert 1.0 < control_spots.mean() < 2.0 and spotted.mean() > 8
    # Puncta of untreated cells are dimmer (peak relative to the cell's cytoplasm level).
    control_peaks = np.concatenate([c.spots[:, 3] / c.cytoplasm_level for c in control if len(c.spots)])
    spotted_peaks = np.concatenate([c.spots[:, 3] / c.cytoplasm_level for c in _cells("spots", 50)])
    assert control_peaks.max() <= 0.9 and spotted_peaks.min() >= 0.8 and np.median(spotted_peaks) > 1.4
    assert all(len(c.fragments) == 0 for c in control)
    assert all(3 <= len(c.fragments) <= 6 for c in _cells("fragmentation", 50))


def test_spots_lie_in_the_cytoplasm() -> None:
    for cell in _cells("spots", 40):
        for dx, dy, sigma, peak in cell.spots:
            t = math.atan2(dy, dx)
            assert math.hypot(dx, dy) < cell.radius_towards(t)  # inside the body ellipse
            u, v = dx - cell.nuc_dx, dy - cell.nuc_dy
            c, s = math.cos(cell.nuc_angle), math.sin(cell.nuc_angle)
            assert ((u * c + v * s) / cell.nuc_a) ** 2 + ((-u * s + v * c) / cell.nuc_b) ** 2 > 1.0  # not nucleus
            assert 0.6 <= sigma <= 1.0 and peak > 0


def test_placement_keeps_cell_bodies_apart() -> None:
    rng = np.random.default_rng(2)
    cells = _cells("elongation", 30, seed=4)
    placed = [c for c in place_cells(rng, cells, 128, 128) if c is not None]
    assert 5 <= len(placed) <= 30
    for i, a in enumerate(placed):
        assert 0 <= a.x < 128 and 0 <= a.y < 128
        for b in placed[i + 1:]:
            t = math.atan2(b.y - a.y, b.x - a.x)
            assert math.hypot(b.x - a.x, b.y - a.y) >= 0.85 * (a.radius_towards(t) + b.radius_towards(t + math.pi))
