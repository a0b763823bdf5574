# pq-issuer on distroless/static, as non-root, for users with a container engine:
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/pq-issuer:<tag> .
# Without one, `make image` builds the equivalent image (same static binary, same user, same
# entrypoint) from Go alone; see tools/image.
FROM --platform=$BUILDPLATFORM golang:1.27 AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY controllers/ controllers/
COPY signer/ signer/
COPY main.go ./
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/pq-issuer .

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/pq-issuer/pq-issuer" \
      org.opencontainers.image.title="pq-issuer" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/pq-issuer /pq-issuer
USER 65532:65532
ENTRYPOINT ["/pq-issuer"]
