# PokeWatch pipeline: the project plus Airflow 3 for the DAG's tasks. Usable as
# the official Airflow Helm chart's custom image (airflow user 50000, group 0,
# AIRFLOW_HOME=/opt/airflow, the DAG baked in at /opt/airflow/dags).
#   docker build -f docker/pipeline.Dockerfile -t pokewatch-pipeline .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md docker/constraints.txt ./
RUN mkdir contracts gateway workers \
    && touch contracts/__init__.py gateway/__init__.py workers/__init__.py \
    && pip install -c constraints.txt ".[worker,airflow]" \
    && pip uninstall -y pokewatch
COPY contracts contracts
COPY gateway gateway
COPY workers workers
RUN pip install --no-deps .

FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --uid 50000 --gid 0 --home-dir /opt/airflow --shell /bin/bash airflow
COPY --from=build /opt/venv /opt/venv
COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 cards.yaml /opt/airflow/cards.yaml
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    AIRFLOW_HOME=/opt/airflow AIRFLOW__CORE__LOAD_EXAMPLES=False \
    POKEWATCH_DATA_DIR=/opt/airflow/pokewatch POKEWATCH_CARDS_FILE=/opt/airflow/cards.yaml
WORKDIR /opt/airflow
USER 50000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import airflow.sdk, workers.pipeline.run"]
# The chart passes its own commands (scheduler, api-server, task runs).
CMD ["airflow", "version"]
