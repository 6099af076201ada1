# A small image with only the tillit binary, running as a non-root user.
#
#   docker build -t tillit --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 8080:8080 -v tillit-data:/var/lib/tillit \
#     -v $PWD/tillit.yaml:/etc/tillit/tillit.yaml:ro \
#     -e TILLIT_KEY_ENCRYPTION_KEY=... tillit
#
# The configuration is read from /etc/tillit/tillit.yaml; give it
# listen: 0.0.0.0:8080 and data_dir: /var/lib/tillit (or storage:
# postgres://...). The health check asks the server's /readyz with
# `tillit health`, as the image has no shell and no curl.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/tillit ./cmd/tillit \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tillit /usr/local/bin/tillit
# The data folder, owned by the nonroot user (65532) the image runs as.
COPY --from=build --chown=65532:65532 --chmod=700 /out/data /var/lib/tillit
VOLUME /var/lib/tillit
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["/usr/local/bin/tillit", "health", "--config", "/etc/tillit/tillit.yaml"]
ENTRYPOINT ["/usr/local/bin/tillit"]
CMD ["serve", "--config", "/etc/tillit/tillit.yaml"]
