# fireline: one image for every part (`fireline worker`, `fireline api`, the CLI).
#
#   docker build -t fireline:0.1.0 .
#   docker run --rm fireline:0.1.0 --help
#
# Two stages: the build stage installs fireline and its dependencies into a virtualenv; the
# runtime stage copies only that virtualenv onto a slim Python, so no compiler, pip cache or
# source tree ships. The process runs as an unprivileged user and writes only under
# FIRELINE_STATE_DIR (mount a volume there, or run with a read-only root filesystem and a
# writable volume, as docker-compose.yml and deploy/kubernetes/ do).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/fireline
WORKDIR /src
# Metadata first, then the packages setuptools finds (pyproject.toml: workflows, activities,
# runbooks, worker); tests, bench and docs stay out of the image.
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY activities ./activities
COPY runbooks ./runbooks
COPY worker ./worker
RUN /opt/fireline/bin/pip install . \
    && /opt/fireline/bin/fireline --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="fireline" \
      org.opencontainers.image.description="Self-hostable incident response on durable Temporal workflows" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid, so Kubernetes runAsNonRoot can verify it and volume ownership is
# predictable.
RUN groupadd --system --gid 10001 fireline \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin fireline \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/fireline
COPY --from=build /opt/fireline /opt/fireline
ENV PATH=/opt/fireline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FIRELINE_STATE_DIR=/var/lib/fireline \
    FIRELINE_LOG_FORMAT=json
WORKDIR /var/lib/fireline
USER 10001:10001
# The API's port (FIRELINE_API_PORT); the worker listens on nothing.
EXPOSE 8080
ENTRYPOINT ["fireline"]
CMD ["worker"]
