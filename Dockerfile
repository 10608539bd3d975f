# The engine image: the mcnn toolkit and its PyTorch engine on current GPUs (no Caffe inside).
#
#   docker build -t mcnn:torch .
#   docker run --rm --gpus all -v /data:/data mcnn:torch reproduce bbbc021 \
#       --raw /data/BBBC021 --out /data/runs/bbbc021 --engine torch
#
# docs/docker.md explains the commands. Build argument TORCH_IMAGE: the PyTorch base image.

# PyTorch 2.9.1 built for CUDA 12.6: its kernels cover sm_50 to sm_90, so the image runs on the same
# GPUs as the Caffe image (Pascal to Hopper); the runtime variant is enough, as nothing is compiled.
# For Blackwell GPUs (sm_100, sm_120) build with a cuda12.8 tag, e.g.
# --build-arg TORCH_IMAGE=pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime
ARG TORCH_IMAGE=pytorch/pytorch:2.9.1-cuda12.6-cudnn9-runtime
FROM ${TORCH_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV MCNN_HOME=/opt/mcnn \
    MCNN_ENGINE=torch \
    PYTHONUNBUFFERED=1
COPY . /opt/mcnn
# The base image's CUDA build of torch is held, so pip never swaps it for another build.
RUN python -c 'import torch; print("torch==" + torch.__version__)' > /tmp/hold.txt \
    && pip install --no-cache-dir --constraint /tmp/hold.txt "/opt/mcnn[engine]" \
    && rm /tmp/hold.txt \
    && python /opt/mcnn/docker/check_image.py torch \
    && install -d -m 1777 /workspace

# Relative paths resolve here; anyone (docker run --user) may write to it.
WORKDIR /workspace
ENTRYPOINT ["/bin/bash", "/opt/mcnn/docker/entrypoint.sh"]
CMD ["help"]
