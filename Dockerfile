# syntax=docker/dockerfile:1
# One image for every process: `customer-service api|consumer|scheduler|worker|operator|migrate`.
#
# Stage 1 builds a virtualenv from wheels; stage 2 copies only that virtualenv onto a
# clean slim base, so no compiler, pip cache or source tree reaches the final image.
# Only `pip install .` (never `.[dev]`): the embedded PostgreSQL, Valkey and Kafka
# servers are for laptops and tests, not for a cluster.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, from pyproject.toml alone, so a source change reuses this layer.
COPY pyproject.toml README.md ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install --only-binary=:all: -r /tmp/requirements.txt
COPY shared/ shared/
COPY services/ services/
RUN pip install --no-deps . \
    && python -m compileall -q /opt/venv/lib \
    && customer-service --help > /dev/null

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="customer-service" \
      org.opencontainers.image.description="Customer profiles, favorites, statistics and loyalty for the family coffee-ordering platform" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}"
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 customer \
    && useradd --system --uid 10001 --gid customer --no-create-home --shell /usr/sbin/nologin customer
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRPC_PORT=50052 \
    METRICS_PORT=9464
USER 10001:10001
WORKDIR /tmp
EXPOSE 50052 9464 8080 8081
ENTRYPOINT ["customer-service"]
CMD ["api"]
