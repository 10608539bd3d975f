"""Classify one field the pycaffe way: a deploy net, caffe.io.load_image and a Transformer.

Usage: classify.py DEPLOY WEIGHTS CHANNEL_PNG [CHANNEL_PNG ...]; prints JSON {prob, class}.
"""

import json
import sys

import caffe
import numpy as np

deploy, weights, images = sys.argv[1], sys.argv[2], sys.argv[3:]
caffe.set_mode_cpu()
net = caffe.Net(deploy, weights, caffe.TEST)
net.blobs["data"].reshape(1, *net.blobs["data"].data.shape[1:])

# One grey image per channel, each H x W x 1 in [0, 1]; stacked to H x W x C.
field = np.concatenate([caffe.io.load_image(path, color=False) for path in images], axis=2)

transformer = caffe.io.Transformer({"data": net.blobs["data"].data.shape})
transformer.set_transpose("data", (2, 0, 1))
transformer.set_raw_scale("data", 255)        # back to the 0..255 the net was trained on
transformer.set_input_scale("data", 1 / 256)  # the train_val's transform_param scale
net.blobs["data"].data[...] = transformer.preprocess("data", field)
out = net.forward()
prob = out["prob"][0]
print(json.dumps({"prob": prob.tolist(), "class": int(prob.argmax())}))
