# Parley: multi-stage build on a slim Python base, running as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY bots ./bots
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 parley
COPY --from=build /install /usr/local
WORKDIR /data
RUN chown parley:parley /data
USER parley
ENV PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/parley.db
# `parley run` applies the migrations at start; the health check asks the database, nothing else.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import sys; from bots.cli import main; sys.exit(main(['db', 'upgrade']))"]
CMD ["parley", "run"]
