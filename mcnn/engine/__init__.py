"""The PyTorch engine: runs Caffe prototxt, solver and LMDB files with Caffe's semantics.

- :func:`load_net` / :class:`Net`: a net for one phase, weights from ``.caffemodel`` files,
  forward on numpy arrays or tensors, every named blob available (features, probabilities).
- :class:`Trainer`: Caffe's solver loop, writing Caffe's snapshots
  (:func:`mcnn.engine.launch.run_training` starts it on the CPU, one GPU or several).
"""

from mcnn.engine.net import LearnableBlob, Net, load_net
from mcnn.engine.trainer import Trainer, TrainOptions, TrainResult

__all__ = ["LearnableBlob", "Net", "TrainOptions", "TrainResult", "Trainer", "load_net"]
