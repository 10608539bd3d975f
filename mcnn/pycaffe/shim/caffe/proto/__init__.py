"""``caffe.proto``: holds ``caffe_pb2``, the schema (mcnn.caffe.proto.caffe_pb2)."""
