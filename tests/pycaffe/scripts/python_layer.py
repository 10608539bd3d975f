"""Train a regression with a Python data layer and a Python loss layer, through pycaffe's SGDSolver.

Usage: python_layer.py WORKDIR; prints JSON {weights, bias, loss_before, loss_after, layer_types, error, shapes}.
"""

import json
import sys
from pathlib import Path

import caffe

work = Path(sys.argv[1])
net_text = """name: "regression"
layer { name: "data" type: "Python" top: "x" top: "t"
        python_param { module: "pylayers_demo" layer: "RegressionData" param_str: '{"batch": 32, "seed": 3}' } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y"
        inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "Python" bottom: "y" bottom: "t" top: "loss" loss_weight: 1
        python_param { module: "pylayers_demo" layer: "EuclideanLoss" } }
"""
(work / "regression.prototxt").write_text(net_text)
(work / "solver.prototxt").write_text(
    f'net: "{work / "regression.prototxt"}"\nbase_lr: 0.1\nlr_policy: "fixed"\nmomentum: 0.9\n'
    f'max_iter: 200\ndisplay: 0\nrandom_seed: 1\nsnapshot_prefix: "{work / "reg"}"\n')

solver = caffe.SGDSolver(str(work / "solver.prototxt"))
shapes = {name: list(blob.data.shape) for name, blob in solver.net.blobs.items()}
solver.step(1)
loss_before = float(solver.net.blobs["loss"].data[0])
solver.step(149)
loss_after = float(solver.net.blobs["loss"].data[0])

bad = work / "picky.prototxt"
bad.write_text('name: "p"\nlayer { name: "p" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 } } }\n'
               'layer { name: "picky" type: "Python" bottom: "x" top: "y" '
               'python_param { module: "pylayers_demo" layer: "Picky" param_str: "nope" } }\n')
try:
    caffe.Net(str(bad), caffe.TEST)
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"

print(json.dumps({"weights": solver.net.params["fc"][0].data.ravel().tolist(),
                  "bias": float(solver.net.params["fc"][1].data[0]), "loss_before": loss_before,
                  "loss_after": loss_after, "layer_types": [type(layer).__name__ for layer in solver.net.layers],
                  "error": error, "shapes": shapes}))
