"""``caffe.net_spec`` is :mod:`mcnn.pycaffe.net_spec` (this module replaces itself with it on import)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mcnn.pycaffe.net_spec")
