# syntax=docker/dockerfile:1.7
# One image for every pipeline step, the PyTorchJob/TrainJob pods and `lowres-ocr` itself.
#   GPU (default): docker build -t ghcr.io/lowres-ocr/lowres-ocr:0.1.0-gpu .
#   CPU:           docker build --build-arg VARIANT=cpu -t ghcr.io/lowres-ocr/lowres-ocr:0.1.0-cpu .
# GPU base: NGC PyTorch 24.10 (CUDA 12.6, TensorRT 10.5) = the release of the Triton image nvcr.io/nvidia/tritonserver:24.10-py3,
# so TensorRT plans built by convert_tensorrt load in the deployed server.
ARG VARIANT=gpu
ARG GPU_BASE=nvcr.io/nvidia/pytorch:24.10-py3
ARG CPU_BASE=python:3.11.10-slim-bookworm

FROM ${GPU_BASE} AS base-gpu
# NGC ships CUDA torch, tensorrt and polygraphy (the `gpu` extra): they are kept, no second torch from PyPI

FROM ${CPU_BASE} AS base-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u2 libgl1=1.6.0-1 libglib2.0-0=2.74.6-2+deb12u6 \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# hadolint ignore=DL3006
FROM base-${VARIANT} AS final
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOWRES_OCR_ROOT=/app DVC_NO_ANALYTICS=1 AWS_EC2_METADATA_DISABLED=true
WORKDIR /app
# dependencies first (cached while only the code changes)
COPY pyproject.toml README.md ./
# every runtime dependency of pyproject.toml except torch (CUDA build from the base, CPU build installed above)
RUN python -c "import re, pathlib; t = pathlib.Path('pyproject.toml').read_text(); \
deps = re.search(r'^dependencies = \[(.*?)^\]', t, re.S | re.M).group(1); \
print('\n'.join(d for d in re.findall(r'\"([^\"]+)\"', deps) if not d.startswith('torch')))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
# the project: package, components, pipeline, manifests + vendored schemas, DVC metadata (data comes by `dvc pull`)
COPY lowres_ocr ./lowres_ocr
COPY components ./components
COPY pipelines ./pipelines
COPY manifests ./manifests
COPY model ./model
COPY data.dvc .dvcignore ./
COPY .dvc/config .dvc/config
RUN pip install --no-cache-dir --no-deps -e . \
 && useradd --uid 1000 --create-home --shell /usr/sbin/nologin lowres \
 && mkdir -p /workspace && chown -R 1000:1000 /app /workspace \
 && git config --system --add safe.directory /app \
 && dvc config --local core.no_scm true
USER 1000:1000
ENTRYPOINT []
CMD ["lowres-ocr", "--help"]
