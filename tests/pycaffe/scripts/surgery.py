"""Net surgery the pycaffe way: copy weights between nets, edit a layer's blobs, reshape the input, save.

Usage: surgery.py DEPLOY WEIGHTS EDITED_DEPLOY OUT_CAFFEMODEL; the edited deploy names the last
InnerProduct "fc2_rev". Prints JSON with both nets' probabilities on three images.
"""

import json
import sys

import caffe
import numpy as np

deploy, weights, edited, out_path = sys.argv[1:5]
net = caffe.Net(deploy, weights, caffe.TEST)
new = caffe.Net(edited, caffe.TEST)

# Copy every layer both nets have, then the renamed classifier with its classes in reverse order.
for name in net.params:
    if name in new.params:
        for i, blob in enumerate(net.params[name]):
            new.params[name][i].data[...] = blob.data
new.params["fc2_rev"][0].data[...] = net.params["fc2"][0].data[::-1]
new.params["fc2_rev"][1].data[...] = net.params["fc2"][1].data[::-1]

# Three images at once: reshape the input blob, then the net.
images = np.random.default_rng(0).integers(0, 200, (3, *net.blobs["data"].data.shape[1:])) / 256
for n in (net, new):
    n.blobs["data"].reshape(*images.shape)
    n.reshape()
    n.blobs["data"].data[...] = images
before = net.forward()["prob"].copy()
after = new.forward()["prob"].copy()
new.save(out_path)
print(json.dumps({"before": before.tolist(), "after": after.tolist(),
                  "shapes": {k: list(v.data.shape) for k, v in new.blobs.items()}}))
