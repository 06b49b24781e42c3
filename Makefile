# taskerfs build, test and benchmark entry points.
GO      ?= go
BIN     := bin/taskerfs
PKGS    := $$($(GO) list ./... | grep -v /tests$$)

.PHONY: all build test deps unit integration vet fmt-check crash-long bench bench-quick bench-scale mount clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/taskerfs

# The one test command (README): static checks, unit tests, then the
# integration tests that mount the built binary.
test: deps fmt-check vet unit integration

# Installs missing test tools (apt packages as root, the S3 test server).
deps:
	scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $(PKGS)

integration: build
	TASKERFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 40m ./tests/...

# 200 kill -9 cycles instead of CI's short run.
crash-long: build
	TASKERFS_BIN=$(CURDIR)/$(BIN) TASKERFS_CRASH_CYCLES=200 $(GO) test -count=1 -timeout 60m -run TestCrash ./tests/...

# Mount the default data dir ($$XDG_DATA_HOME/taskerfs or ~/.local/share/taskerfs) on ./mnt.
mount: build
	$(BIN) mount mnt

clean:
	rm -rf bin

# The benchmark table against go-fuse's loopback example (see BENCHMARKS.md).
bench:
	bench/run.sh

bench-quick:
	bench/run.sh --quick

# Search and index at scale (issue 14): bench/scale.sh [SESSIONS] [--mount|--all]
# (make bench-scale SCALE_FLAGS=--all: every row of the issue's table).
SCALE_SESSIONS ?= 10000
bench-scale:
	bench/scale.sh $(SCALE_SESSIONS) $(SCALE_FLAGS)
