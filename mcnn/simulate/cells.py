"""Per-cell phenotype states: which cells of a field show the phenotype, and what each cell looks like.

A cell is a nucleus inside a cell body, both ellipses with a wavy outline (harmonics of the
angle). Everything here is random draws from a :class:`numpy.random.Generator`; nothing touches
pixels (that is :mod:`mcnn.simulate.render`). Coordinates are pixels, ``x`` along columns and
``y`` along rows; angles in radians.

What an *affected* cell looks like, per phenotype (``s`` is a per-cell strength, uniform in
[0.5, 1], so the phenotype is graded between cells; untreated cells vary too, so a single cell
is not always unambiguous but a field of them is):

- ``translocation``: the nucleus/cytoplasm ratio of the cytoplasmic marker rises from about
  0.45 (untreated, log-normal sd 0.2) to ``0.45 * 5**s``, and the cytoplasm dims by ``1 - 0.4 s``.
- ``spots``: Poisson(``3 + 10 s``) bright puncta (Gaussian sd 0.6-1.0 px, peak 0.8-2.4x the
  cytoplasm level) in the cytoplasm; untreated cells have Poisson(1.5) dimmer ones (0.3-0.9x).
- ``elongation``: the cell aspect ratio goes from about 1.25 (untreated, log-normal sd 0.12) to
  ``1.25 * (5.5 / 1.25)**s`` (2.6 to 5.5) with ``1 + 0.5 s`` times the area (up to about 60 px
  long); the nucleus follows, its aspect ratio growing by ``1 + 1.2 s`` (to about 2).
- ``fragmentation``: the nucleus is replaced by 3-6 bright round fragments (radius 0.28-0.4 of
  the nuclear radius) scattered 0.7-1.4 nuclear radii around its centre.
- ``density``: the cell dies; with probability :data:`DENSITY_LOSS` it has detached and is not
  imaged, otherwise it is small, round, with a condensed bright nucleus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from mcnn.simulate.config import CONTROL, PHENOTYPES, Appearance

#: Probability that a cell affected by the ``density`` phenotype has detached (is not imaged).
DENSITY_LOSS = 0.75
#: Median aspect ratios (long / short axis) of untreated and fully elongated cells.
CONTROL_ASPECT, ELONGATED_ASPECT = 1.25, 5.5
#: Median nucleus/cytoplasm ratio of the cytoplasmic marker in untreated cells, and the fold
#: change of a fully translocated cell.
CONTROL_NUC_RATIO, TRANSLOCATION_FOLD = 0.45, 5.0
_HARMONICS = (2, 3, 4)
_EMPTY4 = np.zeros((0, 4))


@dataclass(frozen=True, eq=False)
class Cell:
    """One cell, centred at ``(x, y)``.

    ``a`` >= ``b`` are the cell body's semi-axes along ``angle`` and across it; ``shape`` holds
    (amplitude, phase) of the outline harmonics 2, 3, 4 (the radius is scaled by
    ``1 + sum(amp * cos(k * theta - phase))``). The nucleus is an ellipse at offset
    ``(nuc_dx, nuc_dy)`` with its own semi-axes, angle and harmonics. ``nuclear_level`` and
    ``cytoplasm_level`` are the stain intensities (ADU above background); in the cytoplasm channel
    the nucleus shows ``nuc_ratio * cytoplasm_level``. ``spots`` rows are (dx, dy, sigma, peak ADU)
    relative to the centre; ``fragments`` rows (dx, dy, radius, relative intensity) replace the
    nucleus in the nuclear channel when not empty. ``phenotype`` is the phenotype the cell shows
    (``control`` for an unaffected cell), ``strength`` its per-cell strength (0 when unaffected).
    """

    x: float
    y: float
    angle: float
    a: float
    b: float
    shape: tuple[tuple[float, float], ...]
    nuc_dx: float
    nuc_dy: float
    nuc_angle: float
    nuc_a: float
    nuc_b: float
    nuc_shape: tuple[tuple[float, float], ...]
    nuclear_level: float
    cytoplasm_level: float
    nuc_ratio: float
    spots: np.ndarray = field(default_factory=lambda: _EMPTY4.copy())
    fragments: np.ndarray = field(default_factory=lambda: _EMPTY4.copy())
    phenotype: str = CONTROL
    strength: float = 0.0

    @property
    def aspect_ratio(self) -> float:
        """Planted aspect ratio ``a / b`` of the cell body (outline harmonics aside)."""
        return self.a / self.b

    def radius_towards(self, direction: float) -> float:
        """Distance (px) from the centre to the body ellipse's outline in direction ``direction``."""
        t = direction - self.angle
        return self.a * self.b / math.hypot(self.b * math.cos(t), self.a * math.sin(t))


@dataclass(frozen=True, eq=False)
class FieldState:
    """The cells of one field and its ground truth.

    ``n_seeded`` counts the cells that were in the field before treatment (imaged ones plus those
    the ``density`` phenotype detached, ``n_lost``); ``n_affected`` the ones that show the
    phenotype (detached included). ``expected_fraction`` is the Hill probability the states were
    drawn with.
    """

    cells: tuple[Cell, ...]
    phenotype: str
    expected_fraction: float
    n_seeded: int
    n_affected: int
    n_lost: int = 0

    @property
    def affected_fraction(self) -> float:
        """Realised fraction of the field's cells showing the phenotype (0 for an empty field)."""
        return self.n_affected / self.n_seeded if self.n_seeded else 0.0


def _outline(rng: np.random.Generator, amplitude: float) -> tuple[tuple[float, float], ...]:
    return tuple((float(rng.normal(0.0, amplitude / k)), float(rng.uniform(0, 2 * math.pi))) for k in _HARMONICS)


def draw_cell(rng: np.random.Generator, appearance: Appearance, phenotype: str = CONTROL) -> Cell:
    """A cell centred at (0, 0) showing ``phenotype`` (``control`` for an unaffected cell).

    The ``density`` phenotype here draws the look of a dying cell that is still attached.
    """
    if phenotype != CONTROL and phenotype not in PHENOTYPES:
        raise ValueError(f"unknown phenotype {phenotype!r}")
    s = float(rng.uniform(0.5, 1.0)) if phenotype != CONTROL else 0.0
    sd = appearance.cell_intensity_sd
    nuclear_level = appearance.nuclear_level * float(rng.lognormal(0.0, sd))
    cytoplasm_level = appearance.cytoplasm_level * float(rng.lognormal(0.0, sd))
    radius = appearance.cell_radius * float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3))
    nuc_radius = appearance.nucleus_radius * float(np.clip(rng.normal(1.0, 0.1), 0.75, 1.25))
    aspect = max(1.0, CONTROL_ASPECT * float(rng.lognormal(0.0, 0.12)))
    nuc_aspect = 1.0 + abs(float(rng.normal(0.1, 0.08)))
    log_ratio = math.log(CONTROL_NUC_RATIO) + float(rng.normal(0.0, 0.2))
    outline_amp = 0.1

    if phenotype == "translocation":
        log_ratio += s * math.log(TRANSLOCATION_FOLD)
        cytoplasm_level *= 1.0 - 0.4 * s
    elif phenotype == "elongation":
        aspect = ELONGATED_ASPECT ** s * CONTROL_ASPECT ** (1 - s) * float(rng.lognormal(0.0, 0.1))
        radius *= math.sqrt(1.0 + 0.5 * s)
        nuc_aspect *= 1.0 + 1.2 * s  # the nucleus follows the cell's shape
    elif phenotype == "density":
        aspect = 1.0 + abs(float(rng.normal(0.0, 0.08)))
        radius *= 0.7
        nuc_radius *= 0.7
        nuc_aspect = 1.0 + abs(float(rng.normal(0.0, 0.05)))
        nuclear_level *= 1.5
        cytoplasm_level *= 1.2
        outline_amp = 0.04

    a, b = radius * math.sqrt(aspect), radius / math.sqrt(aspect)
    nuc_a, nuc_b = nuc_radius * math.sqrt(nuc_aspect), nuc_radius / math.sqrt(nuc_aspect)
    # The nucleus must fit in the body: its long axis (short axis for elongated cells) well inside
    # the body's short axis.
    if nuc_a > 0.8 * b and phenotype != "elongation":
        scale = 0.8 * b / nuc_a
        nuc_a, nuc_b = nuc_a * scale, nuc_b * scale
    elif nuc_b > 0.75 * b:
        scale = 0.75 * b / nuc_b
        nuc_a, nuc_b = nuc_a * scale, nuc_b * scale
    angle = float(rng.uniform(0, math.pi))
    nuc_angle = angle + float(rng.normal(0.0, 0.25 if phenotype == "elongation" else 1.0))
    offset = float(rng.uniform(0.0, max(0.0, 0.35 * (b - nuc_b))))
    direction = float(rng.uniform(0, 2 * math.pi))
    nuc_dx, nuc_dy = offset * math.cos(direction), offset * math.sin(direction)

    cell = Cell(
        x=0.0, y=0.0, angle=angle, a=a, b=b, shape=_outline(rng, outline_amp),
        nuc_dx=nuc_dx, nuc_dy=nuc_dy, nuc_angle=nuc_angle, nuc_a=nuc_a, nuc_b=nuc_b,
        nuc_shape=_outline(rng, 0.06), nuclear_level=nuclear_level, cytoplasm_level=cytoplasm_level,
        nuc_ratio=math.exp(log_ratio), phenotype=phenotype, strength=s,
    )
    if phenotype == "spots":
        count, peak, sigma = int(rng.poisson(3 + 10 * s)), (0.8, 2.4), (0.6, 1.0)
    else:
        count, peak, sigma = int(rng.poisson(1.5)), (0.3, 0.9), (0.6, 1.0)
    spots = _cytoplasm_points(rng, cell, count)
    if len(spots):
        spots = np.column_stack([
            spots, rng.uniform(*sigma, len(spots)), cytoplasm_level * rng.uniform(*peak, len(spots)),
        ])
    else:
        spots = _EMPTY4.copy()
    fragments = _EMPTY4.copy()
    if phenotype == "fragmentation":
        count = int(rng.integers(3, 7))
        # Evenly spread directions (jittered) so that fragments rarely merge.
        t = rng.uniform(0, 2 * math.pi) + 2 * math.pi * (np.arange(count) + rng.uniform(-0.2, 0.2, count)) / count
        r = nuc_radius * rng.uniform(0.7, 1.4, count)
        fragments = np.column_stack([
            nuc_dx + r * np.cos(t), nuc_dy + r * np.sin(t),
            nuc_radius * rng.uniform(0.28, 0.4, count), rng.uniform(1.1, 1.5, count),
        ])
    return replace(cell, spots=spots, fragments=fragments)


def _cytoplasm_points(rng: np.random.Generator, cell: Cell, count: int) -> np.ndarray:
    """``count`` points (dx, dy) inside the cell body, outside the (slightly dilated) nucleus."""
    points: list[tuple[float, float]] = []
    ca, sa = math.cos(cell.angle), math.sin(cell.angle)
    cn, sn = math.cos(cell.nuc_angle), math.sin(cell.nuc_angle)
    tries = 0
    while len(points) < count and tries < 50 * count:
        tries += 1
        rho = math.sqrt(rng.uniform(0.02, 0.8))
        t = rng.uniform(0, 2 * math.pi)
        u, v = rho * math.cos(t) * cell.a, rho * math.sin(t) * cell.b
        dx, dy = u * ca - v * sa, u * sa + v * ca
        px, py = dx - cell.nuc_dx, dy - cell.nuc_dy
        nu, nv = (px * cn + py * sn) / cell.nuc_a, (-px * sn + py * cn) / cell.nuc_b
        if nu * nu + nv * nv > 1.3**2:
            points.append((dx, dy))
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def place_cells(rng: np.random.Generator, cells: list[Cell], height: int, width: int,
                tries: int = 60) -> list[Cell | None]:
    """Give each cell a random centre in the field so that cell bodies barely overlap.

    Two cells may be placed when their centres are at least 0.85 times the sum of their radii
    towards each other apart. A cell that finds no room in ``tries`` draws is returned as ``None``
    (the field is full). Centres may lie near the border, so cells can be cut by it.
    """
    placed: list[Cell] = []
    out: list[Cell | None] = []
    for cell in cells:
        position = None
        for _ in range(tries):
            x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
            ok = True
            for other in placed:
                dx, dy = other.x - x, other.y - y
                distance = math.hypot(dx, dy)
                direction = math.atan2(dy, dx)
                if distance < 0.85 * (cell.radius_towards(direction) + other.radius_towards(direction + math.pi)):
                    ok = False
                    break
            if ok:
                position = (x, y)
                break
        if position is None:
            out.append(None)
        else:
            moved = replace(cell, x=position[0], y=position[1])
            placed.append(moved)
            out.append(moved)
    return out


def sample_field(rng: np.random.Generator, phenotype: str, fraction: float, mean_cells: float,
                 height: int, width: int, appearance: Appearance) -> FieldState:
    """The cells of one field of a well whose compound induces ``phenotype`` in a ``fraction`` of cells.

    The number of seeded cells is Poisson(``mean_cells``); each independently shows ``phenotype``
    with probability ``fraction`` (``phenotype == 'control'`` or ``fraction == 0``: none do).
    Cells that find no room in the field are dropped before the ground truth is counted.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    n = int(rng.poisson(max(mean_cells, 0.0)))
    affected = np.zeros(n, dtype=bool) if phenotype == CONTROL else rng.random(n) < fraction
    lost = np.zeros(n, dtype=bool)
    if phenotype == "density":
        lost = affected & (rng.random(n) < DENSITY_LOSS)
    drawn = [draw_cell(rng, appearance, phenotype if hit else CONTROL)
             for hit, gone in zip(affected, lost, strict=True) if not gone]
    placed = place_cells(rng, drawn, height, width)
    cells = tuple(c for c in placed if c is not None)
    n_lost = int(lost.sum())
    n_affected = sum(c.phenotype != CONTROL for c in cells) + n_lost
    expected = float(fraction) if phenotype != CONTROL else 0.0
    return FieldState(cells=cells, phenotype=phenotype, expected_fraction=expected, n_seeded=len(cells) + n_lost,
                      n_affected=n_affected, n_lost=n_lost)
