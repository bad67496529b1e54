# syntax=docker/dockerfile:1
# SomaMemory image: `somamemory serve` (default), `somamemory migrate`, `somamemory config`.
#   docker build -t somamemory:local .
#   docker run --rm -p 10101:10101 -e SOMA_API_TOKEN=devtoken somamemory:local
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install the project and its dependencies into a virtualenv ----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Every dependency ships wheels for linux/amd64 and arm64, so no compiler is needed here either.
COPY pyproject.toml README.md ./
COPY service/ service/
COPY operator/ operator/
# Bytecode is compiled here, once: the runtime's root filesystem may be read-only.
RUN pip install --no-cache-dir --compile .

# ---- runtime: the virtualenv, the migrations, an unprivileged user --------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="somamemory" \
      org.opencontainers.image.description="SomaMemory: a memory service for AI agents" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 somamemory \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/somamemory \
       --no-create-home --shell /usr/sbin/nologin somamemory \
    && mkdir -p /var/lib/somamemory \
    && chown 10001:10001 /var/lib/somamemory
COPY --from=build /opt/venv /opt/venv
# `somamemory migrate` runs Alembic with ./alembic.ini (SOMA_ALEMBIC_INI names it explicitly too,
# so the Job still finds it if a platform overrides the working directory).
WORKDIR /app
COPY alembic.ini ./
COPY migrations/ migrations/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SOMA_ALEMBIC_INI=/app/alembic.ini \
    SOMA_HOST=0.0.0.0 \
    SOMA_PORT=10101 \
    SOMA_DATA_DIR=/var/lib/somamemory
USER 10001:10001
EXPOSE 10101
# The slim image has no curl: Python's urllib exits non-zero unless /healthz answers 2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:10101/healthz', timeout=4)"]
ENTRYPOINT ["somamemory"]
CMD ["serve"]
