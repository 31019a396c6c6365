# syntax=docker/dockerfile:1
#
# gantry as an image to copy from, as with tini:
#
#   COPY --from=gantry /gantry /usr/local/bin/gantry
#
# The build stage runs scripts/build-static.sh, the script CI (.ci/run) builds and tests the static
# binary with; the final stage holds that one static, stripped executable and nothing else.
#
#   docker build -t gantry .
#   docker build -t gantry:slim --build-arg GANTRY_FEATURES=http,redis .   # fewer probe drivers
#
# examples/Dockerfile.app shows an application image that uses it as its ENTRYPOINT.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# Empty: every probe driver. Otherwise a comma-separated list (http,mysql,postgres,redis,amqp,
# mongodb,smtp) or "none"; see scripts/build-static.sh.
ARG GANTRY_FEATURES=""
# The commit `gantry version` shows (the build context has no .git):
# --build-arg GANTRY_GIT_COMMIT=$(git rev-parse --short=12 HEAD)
ARG GANTRY_GIT_COMMIT=""
WORKDIR /src
COPY . .
RUN GANTRY_FEATURES="${GANTRY_FEATURES}" GANTRY_GIT_COMMIT="${GANTRY_GIT_COMMIT}" \
    scripts/build-static.sh --out /out/gantry

FROM scratch
COPY --from=build /out/gantry /gantry
ENTRYPOINT ["/gantry"]
