"""Tests of mcnn.pycaffe: pycaffe's API on the engine, and unmodified scripts through the shim."""
