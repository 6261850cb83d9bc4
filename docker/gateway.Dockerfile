# PokeWatch REST gateway. Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t pokewatch-gateway .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, from pyproject.toml pinned by constraints.txt: this layer
# is rebuilt only when they change, not on every code change.
COPY pyproject.toml README.md docker/constraints.txt ./
RUN mkdir contracts gateway \
    && touch contracts/__init__.py gateway/__init__.py \
    && pip install -c constraints.txt . \
    && pip install --no-deps -c constraints.txt lightweight-charts \
    && pip uninstall -y pokewatch
# Only the shared contracts and the gateway: no worker or pipeline code. The
# package's `pokewatch` command needs workers/, so it is removed here.
COPY contracts contracts
COPY gateway gateway
RUN pip install --no-deps . && rm /opt/venv/bin/pokewatch

FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --uid 10001 --gid 0 --home-dir /app --shell /usr/sbin/nologin pokewatch
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 POKEWATCH_DATA_DIR=/app/data \
    POKEWATCH_GATEWAY_PORT=8000
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['POKEWATCH_GATEWAY_PORT'], timeout=2)"]
ENTRYPOINT ["python", "-m", "gateway"]
CMD ["--host", "0.0.0.0"]
