# syntax=docker/dockerfile:1.7
#
# The notify programs as small, static, non-root images. One build stage compiles
# all three commands; a target per program picks its binary:
#
#   docker build --target dispatcher   -t notify-dispatcher .   (the default target)
#   docker build --target notify       -t notify-cli .
#   docker build --target fcm-emulator -t notify-fcm-emulator .
#
# docker-compose.yml builds the dispatcher and the emulator from here. The images
# carry no HEALTHCHECK: the orchestrator owns it (compose probes /readyz with the
# busybox wget of the runtime image; Kubernetes would use an httpGet probe).

ARG GO_VERSION=1.26.8
ARG ALPINE_VERSION=3.22

# ---- build: static binaries for the target platform, cross-compiled on the builder's.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
# Dependencies first, so a source change does not download modules again.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=bind,source=go.mod,target=go.mod \
    --mount=type=bind,source=go.sum,target=go.sum \
    go mod download
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,target=. \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -ldflags="-s -w" -o /out/ ./cmd/dispatcher ./cmd/notify ./cmd/fcm-emulator

# ---- runtime: alpine for CA certificates, time zones and a wget for health probes;
# everything runs as the unprivileged user 10001.
FROM alpine:${ALPINE_VERSION} AS runtime
RUN apk add --no-cache ca-certificates tzdata \
 && addgroup -S -g 10001 notify \
 && adduser -S -D -H -u 10001 -G notify -s /sbin/nologin notify \
 && install -d -o notify -g notify -m 0700 /data
LABEL org.opencontainers.image.source="https://github.com/kommo-notify/notify" \
      org.opencontainers.image.vendor="kommo-notify"

FROM runtime AS fcm-emulator
COPY --from=build /out/fcm-emulator /usr/local/bin/fcm-emulator
LABEL org.opencontainers.image.title="notify-fcm-emulator" \
      org.opencontainers.image.description="An FCM HTTP v1 emulator for development and benchmarks"
USER 10001:10001
EXPOSE 4004
ENTRYPOINT ["fcm-emulator"]
# Listen on every interface of the container; 127.0.0.1 (the default) is unreachable.
CMD ["--listen=:4004"]

FROM runtime AS notify
COPY --from=build /out/notify /usr/local/bin/notify
LABEL org.opencontainers.image.title="notify-cli" \
      org.opencontainers.image.description="The notify producer and operator command"
USER 10001:10001
ENTRYPOINT ["notify"]

# The default target. The CLI comes along, for `docker compose exec dispatcher notify ...`.
FROM runtime AS dispatcher
COPY --from=build /out/dispatcher /out/notify /usr/local/bin/
LABEL org.opencontainers.image.title="notify-dispatcher" \
      org.opencontainers.image.description="The notification dispatcher: NATS and JetStream to websockets, the notification center, email and push"
ENV NOTIFY_DATA_DIR=/data \
    NOTIFY_HTTP_ADDR=:8080
WORKDIR /data
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["dispatcher"]
