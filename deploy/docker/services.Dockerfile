# The services image: gateway, refiner, metrics service, and the `tagllm` client that annotate
# jobs run. The package's base install: no torch, no model code.
# Build from the repository root (the tag is the package version; components/images sets it):
#   docker build -f deploy/docker/services.Dockerfile -t registry.example.com/tagllm/services:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tagllm
# Dependencies first, from the pinned list: a code change rebuilds only the layers below.
COPY deploy/docker/requirements-services.txt /tmp/requirements.txt
RUN /opt/tagllm/bin/pip install --requirement /tmp/requirements.txt
COPY pyproject.toml README.md /src/
COPY tagllm /src/tagllm
COPY services /src/services
RUN /opt/tagllm/bin/pip install --no-deps /src

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/tagllm /opt/tagllm
ENV PATH=/opt/tagllm/bin:/usr/local/bin:/usr/bin:/bin PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
# A user without a home or a shell; the root filesystem can be read-only (/tmp is a volume).
USER 65532:65532
WORKDIR /tmp
EXPOSE 50051 50052 50053 9464 9465 9466
CMD ["python", "-m", "services.gateway.server"]
