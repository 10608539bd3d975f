"""Forward a deploy net under real pycaffe (the Caffe venv's python): the oracle of committed and upgraded nets.

Usage: oracle_forward.py DEPLOY CAFFEMODEL INPUTS.npz OUT.npz [BLOB...]. INPUTS.npz holds one array per
input blob (batch first, float32); OUT.npz gets every net output's data, and each BLOB's, after one
forward pass.
"""

import sys

import caffe
import numpy as np


def main():
    deploy, weights, inputs, target = sys.argv[1:5]
    caffe.set_mode_cpu()
    net = caffe.Net(deploy, caffe.TEST, weights=weights)
    arrays = dict(np.load(inputs))
    for name, value in arrays.items():
        net.blobs[name].reshape(*value.shape)
        net.blobs[name].data[...] = value
    net.reshape()
    out = net.forward()
    saved = {name: np.array(value) for name, value in out.items()}
    saved.update({name: net.blobs[name].data.copy() for name in sys.argv[5:]})
    np.savez(target, **saved)


if __name__ == "__main__":
    main()
