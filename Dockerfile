# syntax=docker/dockerfile:1
#
# tkestor-csi: one image for both drivers (Ceph RBD and ChubaoFS/CubeFS),
# controller and node plugin alike; the manifests choose with --driver and
# --mode.
#
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/tkestack/tkestor-csi:v0.1.0 .
#
# The RBD driver uses go-ceph, so the binary is built with cgo against
# Debian bookworm's Ceph 16.2 "pacific" libraries (go-ceph's `pacific` build
# tag) and runs on the same Debian release with the same library version.

ARG GO_IMAGE=golang:1.26.8-bookworm
ARG BASE_IMAGE=debian:bookworm-20260824-slim
# ChubaoFS/CubeFS has no Debian package; its project ships the FUSE client
# in an image. Point CFS_CLIENT_IMAGE/CFS_CLIENT_SRC at another image to use
# another client build.
ARG CFS_CLIENT_IMAGE=cubefs/cfs-client:v3.4.0
# Bookworm's Ceph. The build and run stages install this same version, so
# the binary runs against the librados/librbd it was linked with. Bump it
# (and the other pins below) together when Debian publishes a point release.
ARG CEPH_VERSION=16.2.15+ds-0+deb12u2

FROM ${CFS_CLIENT_IMAGE} AS cfs-client

FROM ${GO_IMAGE} AS build
ARG CEPH_VERSION
ARG VERSION=dev
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "librados-dev=${CEPH_VERSION}" \
        "librbd-dev=${CEPH_VERSION}" \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
COPY cmd/ ./cmd/
COPY pkg/ ./pkg/
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    CGO_ENABLED=1 go build -trimpath -tags pacific \
        -ldflags "-X main.version=${VERSION}" \
        -o /out/tkestor-csi ./cmd/tkestor-csi

FROM ${BASE_IMAGE}
ARG CEPH_VERSION
ARG XFSPROGS_VERSION=6.1.0-1
ARG FUSE3_VERSION=3.14.0-4
ARG KMOD_VERSION=30+20221128-1
ARG VERSION=dev
# Where the ChubaoFS client is in CFS_CLIENT_IMAGE, and where it goes here
# (the node plugin's --cfs-client).
ARG CFS_CLIENT_SRC=/cfs/bin/cfs-client
ARG CFS_CLIENT=/usr/bin/cfs-client

LABEL org.opencontainers.image.title="tkestor-csi" \
      org.opencontainers.image.description="Ceph RBD and ChubaoFS/CubeFS CSI drivers" \
      org.opencontainers.image.source="https://github.com/tkestack/tkestor-csi" \
      org.opencontainers.image.version="${VERSION}"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The node tools, and nothing else:
# - ceph-common: the rbd CLI (krbd map/unmap) and librados2/librbd1;
# - rbd-nbd and rbd-fuse: the nbd mapper and the userspace mapper (an image
#   as a file over FUSE, attached through a loop device);
# - fuse3: fusermount3 and /dev/fuse handling for rbd-fuse and cfs-client;
# - xfsprogs: mkfs.xfs and xfs_growfs;
# - kmod: modprobe of rbd, nbd and fuse when a node has not loaded them.
# util-linux (mount, umount, losetup, blkid, nsenter), mount and e2fsprogs
# (mkfs.ext4, resize2fs) are "required" packages that every Debian image
# already carries at the base image's version; the check below fails the
# build if one of their tools is missing.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "ceph-common=${CEPH_VERSION}" \
        "librados2=${CEPH_VERSION}" \
        "librbd1=${CEPH_VERSION}" \
        "rbd-nbd=${CEPH_VERSION}" \
        "rbd-fuse=${CEPH_VERSION}" \
        "fuse3=${FUSE3_VERSION}" \
        "xfsprogs=${XFSPROGS_VERSION}" \
        "kmod=${KMOD_VERSION}" \
    && rm -rf /var/lib/apt/lists/* \
    && if [ ! -e /usr/bin/fusermount ]; then ln -s fusermount3 /usr/bin/fusermount; fi

COPY --from=build /out/tkestor-csi /usr/local/bin/tkestor-csi
COPY --from=cfs-client ${CFS_CLIENT_SRC} ${CFS_CLIENT}

# Fail the build, not the first mount, when a library or tool is missing:
# ldd must resolve every library of our binary (and of the ChubaoFS client
# when it is dynamically linked), and every tool the node calls must exist.
RUN set -e; \
    out="$(ldd /usr/local/bin/tkestor-csi)"; \
    echo "${out}"; \
    if grep -q "not found" <<<"${out}"; then echo "tkestor-csi: unresolved libraries" >&2; exit 1; fi; \
    if out="$(ldd "${CFS_CLIENT}" 2>&1)"; then \
        echo "${out}"; \
        if grep -q "not found" <<<"${out}"; then echo "cfs-client: unresolved libraries" >&2; exit 1; fi; \
    fi; \
    test -x "${CFS_CLIENT}"; \
    for tool in mount umount losetup blkid mkfs.ext4 resize2fs mkfs.xfs xfs_growfs \
        rbd rbd-nbd rbd-fuse fusermount3 modprobe; do \
        command -v "${tool}" >/dev/null || { echo "missing ${tool}" >&2; exit 1; }; \
    done; \
    /usr/local/bin/tkestor-csi --help >/dev/null 2>&1 || test $? -ne 127

# No USER: the node plugin maps block devices, runs mkfs, mounts into the
# kubelet's directories with Bidirectional propagation and starts FUSE
# daemons, all of which need root (and a privileged container) on the
# host. The controller needs none of it; its Deployment runs this same
# image as a non-root UID through the pod's securityContext.
ENTRYPOINT ["/usr/local/bin/tkestor-csi"]
