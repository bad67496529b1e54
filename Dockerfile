# SomaMemory images, from one Dockerfile:
#   docker build -t ghcr.io/somamemory/somamemory:0.1.0 .                              # the service
#   docker build -t ghcr.io/somamemory/somamemory-operator:0.1.0 --target operator .   # the operator
#   docker run --rm -p 127.0.0.1:10101:10101 -e SOMA_API_TOKEN=devtoken ghcr.io/somamemory/somamemory:0.1.0
# The service's entrypoint is `somamemory` (`serve` by default, `migrate`, `config`); the
# operator's is `kopf run -m somamemory_operator`, with the flags its Helm chart passes.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- requirements: what to install, read from pyproject.toml --------------------------------
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml scripts/docker-requirements.py ./
# The operator imports kopf, kubernetes and prometheus-client only: it gets its `operator` extra
# and that one base dependency, not PostgreSQL, Milvus or the embedding runtime. (The model's
# files are package data of somamemory itself: they come with the code, below.)
RUN python docker-requirements.py pyproject.toml > service.txt \
    && python docker-requirements.py pyproject.toml --extra operator --only prometheus-client \
       > operator.txt

# ---- build-base: an empty virtualenv and pip's settings for the builds below ---------------
FROM ${PYTHON_IMAGE} AS build-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Every dependency ships wheels for linux/amd64 and arm64, so no compiler is needed. The
# dependencies and the project's own code are built apart and copied into the runtime apart:
# only a change of the requirement lists rebuilds the virtualenv; a code change ships a layer
# of a few megabytes.

# ---- deps: the service's dependencies (the base install) -----------------------------------
FROM build-base AS deps
COPY --from=requirements /src/service.txt ./
# Then what only a build needs goes: pip and setuptools, and the test suites packages ship.
RUN pip install --no-cache-dir -r service.txt \
    && pip uninstall --yes --quiet pip setuptools \
    && find /opt/venv -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} +

# ---- deps-operator: the operator's dependencies --------------------------------------------
FROM build-base AS deps-operator
COPY --from=requirements /src/operator.txt ./
RUN pip install --no-cache-dir -r operator.txt \
    && pip uninstall --yes --quiet pip setuptools \
    && find /opt/venv -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} +

# ---- app: the project itself (somamemory and somamemory_operator), staged under /opt/app ----
FROM build-base AS app
COPY pyproject.toml README.md ./
COPY service/ service/
COPY operator/ operator/
# Installed as if into /opt/venv (console script, bytecode paths), but written under /opt/app.
# Bytecode is compiled here, once: the runtime's root filesystem may be read-only.
RUN pip install --no-cache-dir --no-deps --compile --root /opt/app .

# ---- runtime-base: an unprivileged user, nothing to build with -----------------------------
FROM ${PYTHON_IMAGE} AS runtime-base
LABEL org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 somamemory \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/somamemory \
       --no-create-home --shell /usr/sbin/nologin somamemory \
    && mkdir -p /var/lib/somamemory \
    && chown 10001:10001 /var/lib/somamemory
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# ---- operator: `docker build --target operator .` ------------------------------------------
FROM runtime-base AS operator
LABEL org.opencontainers.image.title="somamemory-operator" \
      org.opencontainers.image.description="SomaMemory's Kubernetes operator (kopf)"
COPY --from=deps-operator /opt/venv /opt/venv
COPY --from=app /opt/app/opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080
# As its chart runs it: the chart passes its own arguments (--peering when replicas coordinate);
# these defaults are its single-replica ones, with /healthz on 8080 (the chart's healthPort).
ENTRYPOINT ["kopf", "run", "-m", "somamemory_operator"]
CMD ["--standalone", "--liveness=http://0.0.0.0:8080/healthz", "--all-namespaces"]

# ---- service (the default target): the virtualenv, the migrations --------------------------
FROM runtime-base AS service
LABEL org.opencontainers.image.title="somamemory" \
      org.opencontainers.image.description="SomaMemory: a memory service for AI agents"
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/app/opt/venv /opt/venv
# `somamemory migrate` runs Alembic with ./alembic.ini (SOMA_ALEMBIC_INI names it explicitly too,
# so the Job still finds it if a platform overrides the working directory).
WORKDIR /app
COPY alembic.ini ./
COPY migrations/ migrations/
ENV SOMA_ALEMBIC_INI=/app/alembic.ini \
    SOMA_HOST=0.0.0.0 \
    SOMA_PORT=10101 \
    SOMA_DATA_DIR=/var/lib/somamemory
USER 10001:10001
EXPOSE 10101
# The slim image has no curl: Python's urllib exits non-zero unless /healthz answers 2xx (on
# SOMA_PORT, 10101 unless the container was told another port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SOMA_PORT', '10101'), timeout=4)"]
ENTRYPOINT ["somamemory"]
CMD ["serve"]
