"""The differential suite against real BVLC Caffe (``make parity``); every case skips without the build."""
