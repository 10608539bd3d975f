"""The ``caffe`` package of unmodified pycaffe scripts: every name is :mod:`mcnn.pycaffe`'s (the engine's).

This folder is on ``sys.path`` only when asked for
(``PYTHONPATH=$(python -m mcnn.pycaffe --pythonpath)``), so a real pycaffe is never shadowed.
"""

from typing import Any

import mcnn.pycaffe as _pycaffe
from mcnn.pycaffe import *  # noqa: F403  (pycaffe's public names)
from mcnn.pycaffe import __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    """``caffe.io``, ``caffe.layers``, ``caffe.Layer``, ... : mcnn.pycaffe's, loaded on first use."""
    return getattr(_pycaffe, name)
