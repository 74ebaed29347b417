# syntax=docker/dockerfile:1
# The cpvip image: the release binary on distroless/cc (glibc, libgcc_s, CA certificates; no
# shell, no package manager). The binary needs no other shared library (tests/manifests checks
# it with ldd). The default user of the base image is root: the static pod runs cpvip as uid 0
# with only NET_ADMIN and NET_RAW (see `cpvip manifest pod`).
#
#   docker build -t ghcr.io/cpvip/cpvip:0.1.0 --build-arg CPVIP_GIT_COMMIT=$(git rev-parse --short HEAD) .
#   docker run --rm ghcr.io/cpvip/cpvip:0.1.0 version
#
# The builder is Debian 12 like the runtime, so the binary's glibc symbols exist at run time.

FROM docker.io/library/rust:1.95-bookworm AS build
# .git is not copied (see .dockerignore); the commit shown by `cpvip version` comes from here.
ARG CPVIP_GIT_COMMIT=unknown
ENV CPVIP_GIT_COMMIT=${CPVIP_GIT_COMMIT}
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cpvip --bin cpvip \
 && install -D -m 0755 target/release/cpvip /out/cpvip

FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/cpvip /usr/local/bin/cpvip
ENTRYPOINT ["/usr/local/bin/cpvip"]
CMD ["run"]
