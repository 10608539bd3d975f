"""Classical per-cell measurements of a rendered field, to check that the planted phenotypes are there.

They read only the pixels and the rendered label masks (not the planted cell parameters), so
they check what a classifier would see:

- ``nuc_cyto_ratio`` (translocation): mean of the cytoplasm channel in the nucleus over its mean
  in the cell body 1 px or more away from the nucleus, after background subtraction.
- ``spots`` (spots): local maxima of a difference of Gaussians (sd 0.8 and 2.5 px) of the
  cytoplasm channel, inside the cell body (1 px in from its edge) and 1 px or more away from the
  nucleus, higher than 0.6 times the cell's median cytoplasm level.
- ``aspect_ratio`` (elongation): sqrt of the ratio of the eigenvalues of the cell mask's second
  moments.
- ``fragments`` (fragmentation): connected pieces of the nucleus mask.
- ``area`` (px) of the cell mask; the field's cell count measures ``density``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def background_level(plane: np.ndarray, cell_labels: np.ndarray) -> float:
    """Median of the pixels at least 3 px away from every cell body."""
    outside = ~ndimage.binary_dilation(cell_labels > 0, iterations=3)
    return float(np.median(plane[outside])) if outside.any() else float(np.percentile(plane, 5))


def measure_cells(image: np.ndarray, cell_labels: np.ndarray, nucleus_labels: np.ndarray,
                  min_area: int = 20) -> dict[str, np.ndarray]:
    """Per-cell measurements of a (2, H, W) image (nuclear stain, cytoplasm) and its label masks.

    Returns arrays of equal length, one entry per label with a body of at least ``min_area``
    pixels and a nucleus: ``label``, ``area``, ``aspect_ratio``, ``nuc_cyto_ratio``, ``spots``,
    ``fragments``.
    """
    image = image.astype(np.float64)
    cyto = image[1] - background_level(image[1], cell_labels)
    dog = ndimage.gaussian_filter(cyto, 0.8) - ndimage.gaussian_filter(cyto, 2.5)
    peaks = (dog == ndimage.maximum_filter(dog, size=3)) & (dog > 0)
    out: dict[str, list[float]] = {k: [] for k in ("label", "area", "aspect_ratio", "nuc_cyto_ratio", "spots",
                                                   "fragments")}
    boxes = ndimage.find_objects(cell_labels)
    for index, box in enumerate(boxes, start=1):
        if box is None:
            continue
        body = cell_labels[box] == index
        nucleus = (nucleus_labels[box] == index) & body
        area = int(body.sum())
        if area < min_area or not nucleus.any():
            continue
        rows, cols = np.nonzero(body)
        cov = np.cov(np.vstack([rows, cols]).astype(np.float64))
        eig = np.sort(np.linalg.eigvalsh(cov))
        aspect = float(np.sqrt(eig[1] / max(eig[0], 1e-9)))
        ring = body & ~ndimage.binary_dilation(nucleus, iterations=1)
        local = cyto[box]
        if ring.any():
            cyto_level = float(np.median(local[ring]))
            ratio = float(local[nucleus].mean()) / float(local[ring].mean()) if local[ring].mean() > 0 else np.nan
        else:
            cyto_level, ratio = float("nan"), float("nan")
        spot_region = ring & ndimage.binary_erosion(body, iterations=1)
        spots = int((peaks[box] & spot_region & (dog[box] > 0.6 * max(cyto_level, 1.0))).sum())
        fragments = int(ndimage.label(nucleus)[1])
        for key, value in zip(out, (index, area, aspect, ratio, spots, fragments), strict=True):
            out[key].append(value)
    return {key: np.asarray(values) for key, values in out.items()}
