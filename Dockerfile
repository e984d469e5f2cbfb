# geosal worker / scheduler image: the package with CPU or CUDA torch.
#   docker build -t geosal .
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /opt/geosal

# torch first (its own layer; the CUDA build runs on CPU too)
COPY constraints.txt .
RUN pip install -r constraints.txt

COPY pyproject.toml README.md ./
COPY geosal ./geosal
COPY workflows ./workflows
COPY configs ./configs
RUN pip install -c constraints.txt .

# Shared data / output volume: every worker must see the same paths.
VOLUME ["/data"]
WORKDIR /data
CMD ["dask", "scheduler"]
