# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse --short HEAD) -t switchboard .
# Run:   docker run -p 8080:8080 -p 1883:1883 -v switchboard-data:/var/lib/switchboard \
#          -v $PWD/switchboard.yaml:/etc/switchboard/switchboard.yaml:ro switchboard
# The config must listen on 0.0.0.0 (http.listen, broker.listen) to be
# reachable from outside the container, and keep data_dir /var/lib/switchboard.

FROM golang:1.26-bookworm AS build
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/switchboard ./cmd/switchboard \
 && /out/switchboard version \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchboard /usr/local/bin/switchboard
# distroless "nonroot" is uid/gid 65532; the data directory belongs to it.
COPY --from=build --chown=65532:65532 /out/state /var/lib/switchboard
USER 65532:65532
WORKDIR /var/lib/switchboard
VOLUME ["/var/lib/switchboard"]
EXPOSE 8080 1883
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["run", "--config", "/etc/switchboard/switchboard.yaml"]
