# tkestor-csi: one binary, two CSI drivers (Ceph RBD, ChubaoFS).
# Every target that needs test services starts them and stops them again
# (a cluster that was already running before is left running).

SHELL       := /bin/bash
GO          ?= go
TAGS        := pacific
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
BIN         := bin
IMAGE       ?= ghcr.io/tkestack/tkestor-csi:$(VERSION)
WITH_CEPH   := tests/lib/with-ceph.sh
GOTEST      := $(GO) test -tags $(TAGS)
BENCH_ARGS  ?=
RACES       ?= 200

.PHONY: all build tools test unit sanity-rbd sanity-cfs e2e e2e-rwo demo bench \
        manifests manifests-check lint verify image clean cluster-up cluster-down deps

all: build

deps:
	tests/ceph/cluster.sh install
	@command -v jq >/dev/null && command -v curl >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq curl; }

build: deps
	$(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/tkestor-csi ./cmd/tkestor-csi

tools:
	$(GO) build -o $(BIN)/csi-sanity github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity
	$(GO) build -o $(BIN)/cfs-master-emulator ./tests/cfs/cmd/cfs-master-emulator
	$(GO) build -o $(BIN)/cfs-client-standin ./tests/cfs/cmd/cfs-client-standin
	$(GO) build -o $(BIN)/tkestor-csi-demo ./tests/demo

# test is what CI runs: unit tests, both csi-sanity suites, the end-to-end,
# crash and ReadWriteOnce scenarios, and the manifest checks.
test: build tools
	$(WITH_CEPH) $(MAKE) --no-print-directory unit sanity-rbd sanity-cfs e2e e2e-rwo manifests-check

unit:
	$(WITH_CEPH) $(GOTEST) -race -count=1 ./cmd/... ./pkg/... ./tests/cfs/... ./tests/bench/stats/...

sanity-rbd: build tools
	$(WITH_CEPH) tests/sanity/run.sh rbd

sanity-cfs: build tools
	tests/sanity/run.sh cfs

e2e: build tools
	$(WITH_CEPH) $(GOTEST) -count=1 -timeout 20m ./tests/e2e/...

e2e-rwo: build tools
	$(WITH_CEPH) $(GOTEST) -v -count=1 -timeout 20m ./tests/rwo/... -args -races=$(RACES)

demo: build tools
	$(WITH_CEPH) tests/demo/demo.sh

bench: build
	$(WITH_CEPH) tests/bench/run.sh $(BENCH_ARGS)

manifests:
	$(GO) run ./tests/manifests/gen

manifests-check:
	$(GO) run ./tests/manifests/gen -check
	$(GOTEST) -count=1 ./tests/manifests/...

LINT := $(BIN)/golangci-lint
$(LINT):
	GOBIN=$(abspath $(BIN)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

lint: $(LINT)
	@test -z "$$(gofmt -l cmd pkg tests)" || { gofmt -l cmd pkg tests; exit 1; }
	$(GO) vet -tags $(TAGS) ./...
	$(LINT) run --build-tags $(TAGS) ./...

image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

cluster-up: deps
	tests/ceph/cluster.sh start

cluster-down:
	tests/ceph/cluster.sh stop

clean:
	rm -rf $(BIN)
