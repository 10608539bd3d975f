"""Synthetic images: the phenotype simulator (plate screens with planted phenotypes and known EC50s)
and the look-alikes of the eight datasets' downloads.

The phenotype simulator:

- :mod:`mcnn.simulate.config`: :class:`ScreenConfig`, :class:`Compound`, :class:`Appearance`, presets.
- :mod:`mcnn.simulate.hill`: the Hill curve giving the fraction of cells that show a phenotype (also
  the planted dose response of the look-alikes).
- :mod:`mcnn.simulate.cells`: per-cell phenotype states and geometry of one field (pure).
- :mod:`mcnn.simulate.render`: one field rendered to a (2, H, W) uint16 image and label masks (pure).
- :mod:`mcnn.simulate.layout`: the plate map (wells, controls, dilution series) and its fields.
- :mod:`mcnn.simulate.screen`: :func:`simulate_screen` writes a screen in the generic screen format
  of ``docs/formats.md`` (LoadData image table, plate map, ground truth kept apart).
- :mod:`mcnn.simulate.omezarr`: :func:`write_hcs_plate`, one OME-Zarr HCS plate from a stream of
  fields (the ``screen`` extra, imported lazily).
- :mod:`mcnn.simulate.measure`: per-cell image statistics that check the planted phenotypes.
- :mod:`mcnn.simulate.preview`: RGB preview montages.

Shared by both renderers: :mod:`mcnn.simulate.draw`, the drawing primitives (pixel boxes, ellipse
frames, soft edges, Gaussian spots, smooth noise, float-to-integer pixels).

The look-alikes (:mod:`mcnn.simulate.lookalikes`): :mod:`~mcnn.simulate.lookalikes.render` draws a
field of cells from a :class:`~mcnn.simulate.lookalikes.render.Look`, :mod:`~mcnn.simulate.lookalikes.looks`
holds the looks per class or dose; one module per dataset writes its download layout.

The command line is ``tools/simulate.py`` (also ``data_prep/synthesize.py simulate``). User guide:
``docs/simulator.md``.
"""

from mcnn.simulate.cells import Cell, FieldState, draw_cell, sample_field
from mcnn.simulate.config import (
    CONTROL,
    DEFAULT_PHENOTYPES,
    PHENOTYPES,
    PRESETS,
    Appearance,
    Compound,
    ScreenConfig,
    get_preset,
    with_overrides,
)
from mcnn.simulate.hill import hill_fraction
from mcnn.simulate.layout import Field, Well, plan_fields, plan_wells
from mcnn.simulate.omezarr import write_hcs_plate
from mcnn.simulate.render import FieldNuisance, RenderedField, draw_nuisance, render_field
from mcnn.simulate.screen import ground_truth, simulate_field, simulate_screen

__all__ = [
    "CONTROL",
    "DEFAULT_PHENOTYPES",
    "PHENOTYPES",
    "PRESETS",
    "Appearance",
    "Cell",
    "Compound",
    "Field",
    "FieldNuisance",
    "FieldState",
    "RenderedField",
    "ScreenConfig",
    "Well",
    "draw_cell",
    "draw_nuisance",
    "get_preset",
    "ground_truth",
    "hill_fraction",
    "plan_fields",
    "plan_wells",
    "render_field",
    "sample_field",
    "simulate_field",
    "simulate_screen",
    "with_overrides",
    "write_hcs_plate",
]
