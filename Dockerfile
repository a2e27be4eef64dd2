# Gatehouse as a container image: a static binary on an empty base, run as an
# unprivileged user (65532), with its data in the /data volume.
#
#   docker build -t gatehouse \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse HEAD)" .
#
# `make image` builds the same final stage from a binary built on this machine
# and pulls nothing (Dockerfile.local); keep the two final stages identical.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
# The checkout's .git is not in the build context: the version and commit
# come from the build arguments, as the Makefile stamps them.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-X github.com/gatehouse-registry/gatehouse/internal/version.Version=${VERSION} -X github.com/gatehouse-registry/gatehouse/internal/version.Commit=${COMMIT}" \
      -o /rootfs/gatehouse ./cmd/gatehouse
# The rest of the final file system: CA certificates for outgoing TLS (LDAP,
# S3, token and notification endpoints), the user's passwd and group entries,
# and the data directory.
RUN mkdir -p /rootfs/etc/ssl/certs /data \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'gatehouse:x:65532:65532:gatehouse:/data:/nonexistent' > /rootfs/etc/passwd \
 && echo 'gatehouse:x:65532:' > /rootfs/etc/group
WORKDIR /

FROM scratch
COPY --from=build rootfs/ /
COPY --from=build --chown=65532:65532 data/ /data/
USER 65532:65532
ENV GATEHOUSE_DATA_DIR=/data
WORKDIR /data
EXPOSE 5000 5001
VOLUME /data
ENTRYPOINT ["/gatehouse"]
CMD ["serve"]
