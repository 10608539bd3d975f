"""``caffe.classifier`` is :mod:`mcnn.pycaffe.classifier` (this module replaces itself with it on import)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mcnn.pycaffe.classifier")
