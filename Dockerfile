# geosal worker / scheduler image: the package with CPU or CUDA torch.
#   docker build -t geosal .
FROM python:3.11-slim

# A C/C++ compiler: geosal's native SMOE kernel is built on first use, and torch.compile's
# inductor (CPU) and Triton (GPU) compile kernels at run time.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# Compiled kernels and downloaded weights live on the /cache volume, so a fresh container reuses them.
# The native kernel's build is named after the CPU it was built for, so one cache serves mixed hosts.
ENV TORCH_EXTENSIONS_DIR=/cache/torch_extensions TORCHINDUCTOR_CACHE_DIR=/cache/inductor \
    TRITON_CACHE_DIR=/cache/triton TORCH_HOME=/cache/torch HF_HOME=/cache/huggingface
WORKDIR /opt/geosal

# torch first (its own layer; the CUDA build runs on CPU too)
COPY constraints.txt .
RUN pip install -r constraints.txt

COPY pyproject.toml README.md ./
COPY geosal ./geosal
COPY workflows ./workflows
COPY configs ./configs
RUN pip install -c constraints.txt ".[s3]"

# Shared data / output volume: every worker must see the same paths; compiled-kernel and weight caches.
VOLUME ["/data", "/cache"]
WORKDIR /data
CMD ["dask", "scheduler"]
