"""``caffe.pycaffe`` is :mod:`mcnn.pycaffe` (this module replaces itself with it on import)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mcnn.pycaffe")
