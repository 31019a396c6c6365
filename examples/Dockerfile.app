# An application image with gantry as its ENTRYPOINT. Build the gantry image first, from the
# repository root:
#
#   docker build -t gantry .
#   docker build -f examples/Dockerfile.app -t gantry-hello .
#   docker run --rm gantry-hello
#
# gantry's image holds only the static /gantry, so any base works (Debian, Alpine, distroless).
ARG GANTRY_IMAGE=gantry
FROM ${GANTRY_IMAGE} AS gantry

FROM debian:bookworm-slim
COPY --from=gantry /gantry /usr/local/bin/gantry
# The configuration directory: the boot job and jobs of examples/hello.
COPY examples/hello /etc/gantry.d
# gantry is PID 1: it forwards signals, reaps zombies, and exits with the deciding job's code.
ENTRYPOINT ["/usr/local/bin/gantry", "up", "-c", "/etc/gantry.d"]
