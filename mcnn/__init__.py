"""mcnn: a Caffe-compatible reproduction toolkit for the multi-scale CNN of Godinez et al. 2017.

Package map, top floor first; a module imports only from the floors below its own (the layer
contract in ``pyproject.toml``, checked by ``lint-imports``):

- ``mcnn.cli`` (argument groups and error reporting of the scripts in ``tools/`` and
  ``data_prep/``), ``mcnn.demo`` (the simulated screen end to end, with its HTML report) and
  ``mcnn.pycaffe`` (pycaffe's API on the engine: ``Net``, ``Blob``, the solvers, ``caffe.io``,
  ``net_spec``, ``Classifier``; ``python -m mcnn.pycaffe --pythonpath`` for unmodified scripts)
  and ``mcnn.cluster`` (a reproduction's splits as one job array through submitit: Slurm, or local
  processes; wait, merge).
- ``mcnn.reproduce``: the reproduction orchestrator (prepare, nets and solver, train, evaluate
  per split, dose-response, your own screen's outputs, the Table 1 summary).
- ``mcnn.reproduce_options``: the reproduction's options and their checks.
- ``mcnn.training``: the one launcher of training, on the PyTorch engine or real ``caffe train``;
  ``mcnn.screening``: your own screen after training (every field predicted and profiled, per-well
  Parquet profiles, phenotypic activity with copairs, dose-response).
- ``mcnn.evaluate`` (predictions, metrics, repeat statistics, BBBC021 MoA and NSC/NSCB, figures,
  the Table 1 summary record), ``mcnn.dose`` (aggregation, LL.4 fits, EC50s, plots, reports) and
  ``mcnn.export`` (engine nets as ONNX files, checked in onnxruntime, and TorchScript files).
- ``mcnn.engine`` (the PyTorch engine: layers, net graph, fillers, solvers, training loop,
  snapshots), ``mcnn.prep`` (splits, normalisation, the streaming LMDB build) and
  ``mcnn.simulate`` (every synthetic image: the phenotype simulator and the look-alikes of the
  eight download layouts, on shared drawing primitives).
- ``mcnn.nets``: net builders behind a registry (``mcnn``, ``alexnet``, ``googlenet``), presets
  derived from the dataset classes, the solver builder and the per-layer summary.
- ``mcnn.datasets``: readers of the eight datasets' download layouts, one module per dataset,
  registered by name, and of your own screen (``screen``: a LoadData image table or OME-Zarr
  plates, and a plate map; the format the phenotype simulator writes).
- ``mcnn.caffe``: the Caffe schema, prototxt/caffemodel/binaryproto/solverstate I/O (old V0/V1
  files upgraded on read), Datum and LMDB records, the table of layer types with Caffe's shape
  rules (the one place for its rounding), training-log parsing and the model card.
- Foundations: ``mcnn.report`` (HTML reports), ``mcnn.figures`` (the figure saver),
  ``mcnn.tables`` (the CSV reader and writer), ``mcnn.machine`` (what a run ran on),
  ``mcnn.setsizes`` (train/test set sizes and iterations), ``mcnn.fsutil`` (atomic writes) and
  ``mcnn.errors`` (every exception type).
"""

__version__ = "0.1.0"
