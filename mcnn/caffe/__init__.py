"""Caffe's file formats: the schema, text/binary I/O, Datum/LMDB records and shape rules.

``pb`` is the generated schema module (messages named and numbered as in BVLC Caffe).
"""

from mcnn.caffe.io import (
    array_to_blob,
    blob_to_array,
    format_prototxt,
    net_weights,
    parse_prototxt,
    read_binaryproto,
    read_caffemodel,
    read_net,
    read_prototxt,
    read_solver,
    read_solverstate,
    weights_to_caffemodel,
    write_binaryproto,
    write_caffemodel,
    write_prototxt,
    write_solverstate,
)
from mcnn.caffe.proto import caffe_pb2 as pb

__all__ = [
    "array_to_blob",
    "blob_to_array",
    "format_prototxt",
    "net_weights",
    "parse_prototxt",
    "pb",
    "read_binaryproto",
    "read_caffemodel",
    "read_net",
    "read_prototxt",
    "read_solver",
    "read_solverstate",
    "weights_to_caffemodel",
    "write_binaryproto",
    "write_caffemodel",
    "write_prototxt",
    "write_solverstate",
]
