# syntax=docker/dockerfile:1
#
# Tripline sensor image: a static binary, the default rules, nothing else.
#
#   docker build -t ghcr.io/tripline/sensor:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#
# The BPF objects are committed (internal/capture/*_bpfel.o, rebuilt with
# `make generate`) and embedded by bpf2go, so the build needs no clang.
#
# The image runs as the distroless "nonroot" user (65532): enough for
# `rules validate|list|test`, `replay` and `tail`. Capturing events needs BPF
# privileges; the Kubernetes DaemonSets run the container as uid 0, either
# privileged or with CAP_BPF, CAP_PERFMON and friends (docs/deployment.md). With
# Docker: docker run --user 0 --privileged --pid host -v /sys/kernel/btf:/sys/kernel/btf:ro ...

# Build stage. Pin the digest as well for reproducible builds:
#   docker buildx imagetools inspect golang:1.26.8-bookworm --format '{{json .Manifest.Digest}}'
# then write FROM golang:1.26.8-bookworm@sha256:<digest>.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# Modules first, so that source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY internal/ internal/
COPY rules/ rules/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/usr/bin/sensor ./cmd/sensor
# Only the rule files: rules/tests holds rule tests, not rules.
RUN mkdir -p /out/etc/tripline/rules /out/var/lib/tripline \
    && find rules -maxdepth 1 -name '*.yaml' -exec cp {} /out/etc/tripline/rules/ \; \
    && /out/usr/bin/sensor rules validate /out/etc/tripline/rules

# Final stage: no shell, no package manager, CA certificates and tzdata only.
# Distroless publishes no version tags; static-debian12 pins the Debian
# release. Pin the digest for reproducible builds:
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot --format '{{json .Manifest.Digest}}'
# then write FROM gcr.io/distroless/static-debian12:nonroot@sha256:<digest>.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tripline-sensor" \
      org.opencontainers.image.description="Tripline runtime security sensor: eBPF capture, Falco-language rules, alerts on NATS JetStream" \
      org.opencontainers.image.source="https://github.com/tripline/tripline" \
      org.opencontainers.image.documentation="https://github.com/tripline/tripline/tree/main/docs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build /out/usr/bin/sensor /usr/bin/sensor
COPY --from=build /out/etc/tripline/rules/ /etc/tripline/rules/
COPY --from=build --chown=65532:65532 /out/var/lib/tripline/ /var/lib/tripline/
USER nonroot:nonroot
# /metrics and /healthz when run with --metrics-addr=0.0.0.0:9376.
EXPOSE 9376
# The image has no curl: the sensor probes its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/bin/sensor", "healthcheck", "--addr", "127.0.0.1:9376"]
ENTRYPOINT ["/usr/bin/sensor"]
CMD ["run", "--rules", "/etc/tripline/rules"]
