# Redis 7 from Debian bookworm (redis-server and redis-cli), standing in for redis:7.2-alpine.
ARG DEBIAN_IMAGE=mpls-debian:bookworm
FROM ${DEBIAN_IMAGE}
# Not pinned: the image follows bookworm (security updates) each time it is rebuilt.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
# The Debian package creates the redis user; its uid is not fixed.
# hadolint ignore=DL3066
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
