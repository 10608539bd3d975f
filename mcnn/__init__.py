"""mcnn: a Caffe-compatible reproduction toolkit for the multi-scale CNN of Godinez et al. 2017.

Package map:

- ``mcnn.caffe``: the Caffe schema, prototxt/caffemodel/binaryproto/solverstate I/O, Datum
  and LMDB records, and Caffe's shape rules (the single place for its rounding).
- ``mcnn.nets``: net builders behind a registry (``mcnn``, ``alexnet``, ``googlenet``),
  dataset presets, the solver builder and the per-layer summary.
"""

__version__ = "0.1.0"
