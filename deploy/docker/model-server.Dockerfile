# The model-server image: Triton (from the nvidia-pytriton wheel, as in the local stack and the
# tests) with model `mllm` and its code, started by `tagllm model serve`.
# Builds, by the torch they install (TORCH_BUILD):
#   cu130 (default, tag -gpu): the default index's torch 2.13.0, a CUDA 13 build; the nodes need
#     NVIDIA driver 580 or newer.
#     docker build -f deploy/docker/model-server.Dockerfile \
#       -t registry.example.com/tagllm/model-server:0.1.0-gpu .
#   cu128 (tag -gpu-cuda12): a CUDA 12.8 build, for nodes whose driver is older (570 or newer), from
#   PyTorch's own wheel index (TORCH_INDEX: its base URL, as PyTorch's install page gives it, the
#   build's name is appended):
#     docker build -f deploy/docker/model-server.Dockerfile \
#       --build-arg TORCH_BUILD=cu128 --build-arg TORCH_INDEX=<PyTorch's wheel index> \
#       -t registry.example.com/tagllm/model-server:0.1.0-gpu-cuda12 .
#   cpu (tag -cpu, the development overlay): the same with --build-arg TORCH_BUILD=cpu.
# The image carries the demo checkpoint (11 MB, the CPU overlay's model); the GPU overlay fetches
# a real one into /checkpoint.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_BUILD=cu130
ARG TORCH_INDEX=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tagllm
# torch first, in the chosen build (from the default index for cu130, else from TORCH_INDEX/BUILD,
# which carries its dependencies too); then the pinned list (its torch line is then already
# met); then the code.
RUN if [ "${TORCH_BUILD}" = cu130 ] && [ -z "${TORCH_INDEX}" ]; then \
      /opt/tagllm/bin/pip install "torch==2.13.0"; \
    elif [ -n "${TORCH_INDEX}" ]; then \
      /opt/tagllm/bin/pip install --index-url "${TORCH_INDEX%/}/${TORCH_BUILD}" "torch==2.13.0"; \
    else \
      echo "TORCH_BUILD=${TORCH_BUILD} needs --build-arg TORCH_INDEX=<PyTorch's wheel index>" >&2; exit 2; \
    fi
COPY deploy/docker/requirements-model-server.txt /tmp/requirements.txt
RUN /opt/tagllm/bin/pip install --requirement /tmp/requirements.txt
COPY pyproject.toml README.md /src/
COPY tagllm /src/tagllm
COPY services /src/services
RUN /opt/tagllm/bin/pip install --no-deps /src

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/tagllm /opt/tagllm
# HOME and the Hugging Face caches on the writable /tmp (the root filesystem is read-only in the
# cluster; user 65532 has no home directory), never a download at run time (HF_HUB_OFFLINE).
ENV PATH=/opt/tagllm/bin:/usr/local/bin:/usr/bin:/bin PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    TAGLLM_HOME=/tmp/tagllm HOME=/tmp HF_HOME=/tmp/huggingface HF_HUB_OFFLINE=1
USER 65532:65532
WORKDIR /tmp
EXPOSE 8000 8001 8002
ENTRYPOINT ["tagllm", "model", "serve"]
CMD ["--host=0.0.0.0", "--run-dir=/tmp/tagllm-model-server"]
