"""The pycaffe training loop: solver.step(1), the train loss from the net's blobs, manual test passes.

Usage: train_loop.py SOLVER ITERATIONS TEST_BATCHES; prints JSON {train_loss, test_acc}.
"""

import json
import sys

import caffe
import numpy as np

caffe.set_mode_cpu()
solver = caffe.SGDSolver(sys.argv[1])
niter, test_batches = int(sys.argv[2]), int(sys.argv[3])
test_interval = 6

train_loss = np.zeros(niter)
test_acc = []
for it in range(niter):
    solver.step(1)
    train_loss[it] = solver.net.blobs["loss"].data
    if it % test_interval == 0 or it == niter - 1:
        correct = seen = 0
        test = solver.test_nets[0]
        for _ in range(test_batches):
            test.forward()
            correct += int((test.blobs["fc2"].data.argmax(1) == test.blobs["label"].data).sum())
            seen += test.blobs["label"].data.shape[0]
        test_acc.append(correct / seen)
print(json.dumps({"train_loss": train_loss.tolist(), "test_acc": test_acc, "iter": solver.iter}))
