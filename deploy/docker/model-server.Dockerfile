# The model-server image: Triton (from the nvidia-pytriton wheel, as in the local stack and the
# tests) with model `mllm` and its code, started by `tagllm model serve`.
# Two builds, by the torch they install:
#   GPU (tag -gpu): PyPI's torch 2.13.0, a CUDA 13 build; the nodes need NVIDIA driver 580 or newer.
#     docker build -f deploy/docker/model-server.Dockerfile \
#       -t registry.example.com/tagllm/model-server:0.1.0-gpu .
#   CPU (tag -cpu, the development overlay):
#     docker build -f deploy/docker/model-server.Dockerfile \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
#       -t registry.example.com/tagllm/model-server:0.1.0-cpu .
# The image carries the demo checkpoint (11 MB, the CPU overlay's model); the GPU overlay mounts
# a real one at /checkpoint.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tagllm
# torch first, from the index of the chosen build; then the pinned list (its torch line is then
# already met); then the code.
RUN /opt/tagllm/bin/pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple \
      "torch==2.13.0"
COPY deploy/docker/requirements-model-server.txt /tmp/requirements.txt
RUN /opt/tagllm/bin/pip install --requirement /tmp/requirements.txt
COPY pyproject.toml README.md /src/
COPY tagllm /src/tagllm
COPY services /src/services
RUN /opt/tagllm/bin/pip install --no-deps /src

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/tagllm /opt/tagllm
ENV PATH=/opt/tagllm/bin:/usr/local/bin:/usr/bin:/bin PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    TAGLLM_HOME=/tmp/tagllm
USER 65532:65532
WORKDIR /tmp
EXPOSE 8000 8001 8002
ENTRYPOINT ["tagllm", "model", "serve"]
CMD ["--host=0.0.0.0", "--run-dir=/tmp/tagllm-model-server"]
