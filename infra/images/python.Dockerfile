# Python 3.11 on Debian bookworm: what infra/Dockerfile needs of python:3.11-slim (python3, venv,
# CA certificates), built from Debian's packages.
ARG DEBIAN_IMAGE=mpls-debian:bookworm
FROM ${DEBIAN_IMAGE}
# Not pinned: the image follows bookworm (security updates) each time it is rebuilt.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
