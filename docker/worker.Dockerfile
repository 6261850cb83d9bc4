# PokeWatch stream workers (model and decision: the command picks the role). Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t pokewatch-worker .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, from pyproject.toml pinned by constraints.txt: this layer
# is rebuilt only when they change, not on every code change.
COPY pyproject.toml README.md docker/constraints.txt ./
RUN mkdir contracts gateway workers \
    && touch contracts/__init__.py gateway/__init__.py workers/__init__.py \
    && pip install -c constraints.txt ".[worker]" \
    && pip uninstall -y pokewatch
COPY contracts contracts
COPY gateway gateway
COPY workers workers
RUN pip install --no-deps .

FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --uid 10001 --gid 0 --home-dir /app --shell /usr/sbin/nologin pokewatch
COPY --from=build /opt/venv /opt/venv
# Probes: /livez and /readyz on POKEWATCH_HEALTH_PORT (ready = heartbeat reached the broker).
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 POKEWATCH_DATA_DIR=/app/data POKEWATCH_HEALTH_PORT=8081
WORKDIR /app
USER 10001
EXPOSE 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ['POKEWATCH_HEALTH_PORT'], timeout=2)"]
ENTRYPOINT ["pokewatch", "worker"]
# `model` (needs MLFLOW_TRACKING_URI) or `decision`
CMD ["model"]
