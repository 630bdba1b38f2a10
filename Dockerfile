# Parley: multi-stage build on a slim Python base, running as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
# Every runtime dependency at the exact version and hash of requirements.lock (regenerate it with the command
# at its top), wheels only (the slim image has no compiler); then Parley itself without resolving anything again.
COPY requirements.lock ./
RUN pip install --no-cache-dir --prefix=/install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY core ./core
COPY bots ./bots
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 parley
COPY --from=build /install /usr/local
# /data holds the SQLite database (DATABASE_URL below, and the relative default parley.db resolves here too)
# and IMAGE_DIR: a volume, so they outlive the container. Owned by parley before VOLUME freezes it.
WORKDIR /data
RUN chown parley:parley /data
VOLUME ["/data"]
USER parley
# METRICS_PORT is on by default in the image: the health check below needs it. METRICS_LISTEN=0.0.0.0
# inside the container's own network namespace, so a published port (compose: this host only) reaches it.
ENV PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/parley.db \
    METRICS_PORT=9090 \
    METRICS_LISTEN=0.0.0.0
EXPOSE 9090
# `parley run` applies the migrations at start. Healthy: /livez answers (the process and its event loop are up).
# Not /readyz: an upstream or database outage must not get a container that would recover restarted.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['METRICS_PORT'] + '/livez', timeout=4)"]
CMD ["parley", "run"]
