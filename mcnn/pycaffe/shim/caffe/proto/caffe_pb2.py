"""``caffe.proto.caffe_pb2`` is :mod:`mcnn.caffe.proto.caffe_pb2` (this module replaces itself with it)."""

import sys

from mcnn.caffe.proto import caffe_pb2

sys.modules[__name__] = caffe_pb2
