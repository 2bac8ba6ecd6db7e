# syntax=docker/dockerfile:1

# Builder: resolve nothing, install exactly what uv.lock says into /app/.venv.
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install uv==0.13.8

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project

COPY README.md hatch_build.py ./
COPY bot ./bot
COPY integrations ./integrations
COPY tools ./tools
RUN uv sync --frozen --no-dev --no-editable


# Runtime: the interpreter, the venv and the source; no build tools, not root.
FROM python:3.11-slim AS runtime

RUN groupadd --system parley \
    && useradd --system --gid parley --home-dir /app --no-create-home --shell /usr/sbin/nologin parley \
    && mkdir -p /app/data \
    && chown parley:parley /app/data

WORKDIR /app

COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/pyproject.toml /app/README.md ./
COPY --from=builder /app/bot ./bot
COPY --from=builder /app/integrations ./integrations
COPY --from=builder /app/tools ./tools

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite:////app/data/parley.db \
    PARLEY_HTTP_HOST=0.0.0.0

USER parley
VOLUME /app/data
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PARLEY_HTTP_PORT', '8080') + '/healthz', timeout=4)"]

# `parley run` is PID 1 (exec form, no shell): SIGTERM reaches it, webhooks answer 503, turns
# in flight finish (PARLEY_SHUTDOWN_GRACE_SECONDS) and it exits 0. Give `docker stop -t` /
# Kubernetes' terminationGracePeriodSeconds more than that grace. Readiness: /readyz.
STOPSIGNAL SIGTERM
CMD ["parley", "run"]
