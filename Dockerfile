# dreamd container image: a multi-stage build on Debian 12 (bookworm), the distribution the
# project builds and tests on.
#
#   build    debian:bookworm. Runs the same scripts a developer runs: scripts/bootstrap.sh
#            (Debian packages through apt-get, esbuild through npm into .tools/) and then
#            scripts/build.sh (CMake release build, installed under /opt/dreamd).
#   runtime  debian:bookworm-slim with only the shared libraries dreamd links, curl for the
#            health check, the static esbuild binary (no Node.js needed), a non-root user.
#
#   docker build -t dreamd:local .
#   docker run --rm dreamd:local --help
# Configuration is the environment (see `dreamd --help`); secrets as *_FILE (see deploy/).
# scripts/check-deploy.sh checks this file (base images, the two script calls, the user, port).

FROM debian:bookworm AS build
WORKDIR /src
# Bootstrap first, on its own: this layer is reused as long as the script does not change.
COPY scripts/bootstrap.sh scripts/bootstrap.sh
RUN ./scripts/bootstrap.sh
COPY . .
# esbuild's npm package ships a static binary per platform (@esbuild/linux-x64, -arm64, ...);
# take that one, not the .bin/ link, which may be a Node.js wrapper.
RUN ./scripts/build.sh build/release /opt/dreamd \
    && esbuild=$(ls .tools/node_modules/@esbuild/linux-*/bin/esbuild 2>/dev/null | head -n 1) \
    && if [ -z "$esbuild" ]; then esbuild=$(readlink -f .tools/node_modules/.bin/esbuild); fi \
    && install -m 0755 "$esbuild" /opt/dreamd/bin/esbuild

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl \
        libuv1 libhiredis0.14 libcurl4 libcjson1 libgit2-1.5 libcmark0.30.2 libpcre2-8-0 \
        libsqlite3-0 libssl3 libmicrohttpd12 \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid (10001) so Kubernetes' runAsNonRoot can verify it and volumes can be chowned.
RUN groupadd --gid 10001 dreamd \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/dreamd --no-create-home \
        --shell /usr/sbin/nologin dreamd \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/dreamd
COPY --from=build /opt/dreamd/bin/ /usr/local/bin/
# Fail the build here, not at run time, if a library is missing or esbuild needs Node.js.
RUN dreamd --version \
    && esbuild --version \
    && if ldd /usr/local/bin/dreamd | grep 'not found'; then exit 1; fi

ENV DREAM_DATA_DIR=/var/lib/dreamd \
    DREAM_ADMIN_ADDR=0.0.0.0:9464 \
    DREAM_ESBUILD=/usr/local/bin/esbuild
USER 10001:10001
WORKDIR /var/lib/dreamd
EXPOSE 9464
# dreamd drains on SIGTERM for DREAM_SHUTDOWN_GRACE_MS (25 s): give it longer than that
# (docker stop -t 35, compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9464/healthz || exit 1
ENTRYPOINT ["dreamd"]
