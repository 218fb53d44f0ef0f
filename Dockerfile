# syntax=docker/dockerfile:1
# Gazua PAY container image.
#
# Stages:
#   chef     - Rust toolchain + cargo-chef (pinned), shared by the next two stages
#   planner  - reduces the crate to a dependency "recipe" (changes only when Cargo.toml/lock change)
#   builder  - compiles the dependencies from the recipe (cached layer), then the crate itself,
#              as a fully static glibc binary (-C target-feature=+crt-static), so the runtime
#              stage needs no libc at all
#   runtime  - FROM scratch: the binary alone (about 7 MB, 2.9 MB gzipped), non-root, HEALTHCHECK through
#              `gazua healthcheck` (no curl needed), SIGTERM delivered straight to gazua (PID 1),
#              which drains in-flight requests and exits 0.
#
# Every serve flag is also an environment variable GAZUA_<FLAG> (GAZUA_LEDGER, GAZUA_OUTCOME,
# GAZUA_LATENCY, GAZUA_SHUTDOWN_GRACE, ...): `docker run -e GAZUA_OUTCOME="97% approved, 3% declined"`.
#
# Build:  docker build -t gazua-pay .
# Run:    docker run --rm -p 8080:8080 gazua-pay
#
# ci/podman-test.sh builds the runtime stage below (everything from "FROM scratch AS runtime" on)
# around a locally built static binary and runs it, because base images cannot be pulled in CI.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
WORKDIR /app
RUN cargo install cargo-chef --locked --version 0.1.78

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# Static glibc: the binary runs on scratch, distroless/static or any distro, on x86_64 or arm64
# (the target triple follows the build machine, so `docker buildx --platform linux/arm64` works).
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_STRIP=symbols
COPY --from=planner /app/recipe.json recipe.json
# Dependencies only: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --target "$(uname -m)-unknown-linux-gnu" --recipe-path recipe.json
COPY . .
RUN target="$(uname -m)-unknown-linux-gnu" \
 && cargo build --release --locked --target "$target" --bin gazua \
 && cp "target/$target/release/gazua" /gazua \
 && /gazua --help >/dev/null

FROM scratch AS runtime
LABEL org.opencontainers.image.title="gazua-pay" \
      org.opencontainers.image.description="Mock payment gateway for load tests: every outcome and latency directed by the test" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=builder /gazua /gazua
# Defaults only; override any of them with -e / env:. GAZUA_LEDGER=stateless is what a fleet
# behind a load balancer needs (the deploy files set it); a single container keeps the memory ledger.
ENV GAZUA_LISTEN=0.0.0.0:8080 \
    GAZUA_LOG_FORMAT=json
# 65532 = the conventional "nonroot" uid/gid (distroless); numeric because scratch has no /etc/passwd.
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
# Kept by Docker and by `podman build --format docker` (the OCI image format drops HEALTHCHECK).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/gazua", "healthcheck"]
ENTRYPOINT ["/gazua"]
CMD ["serve"]
