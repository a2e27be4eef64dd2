# Run `make help` for the list of targets.
GO ?= go
# go.mod's toolchain line names the Go release to build with; an older
# installed Go fetches it through the module proxy.
GOTOOLCHAIN ?= auto
export GOTOOLCHAIN
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/gatehouse-registry/gatehouse/internal/version.Version=$(VERSION) \
           -X github.com/gatehouse-registry/gatehouse/internal/version.Commit=$(COMMIT)

.PHONY: help build run test deps lint tidy-check vuln unit integration fuzz bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

build: ## build bin/gatehouse
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/gatehouse ./cmd/gatehouse

run: build ## run gatehouse serve on its embedded defaults
	./bin/gatehouse serve

test: ## the whole suite (what CI runs): deps, tidy-check, lint, vuln, unit, a 3s fuzz run, integration
	bash scripts/test.sh

deps: ## install the packages and pinned tools the tests need (root, Debian)
	bash scripts/install-deps.sh

lint: ## gofmt, go vet, golangci-lint
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(GO) vet ./...
	golangci-lint run ./...

tidy-check: ## fail if go mod tidy would change go.mod or go.sum (changes nothing)
	$(GO) mod tidy -diff

vuln: ## govulncheck; its database comes through the Go module proxy (needs `make deps`)
	bash scripts/vuln.sh

unit: ## unit tests only, with the race detector
	$(GO) test -race ./...

integration: ## integration tests only (needs `make deps`)
	$(GO) test -tags integration -count=1 -p 1 ./test/...

fuzz: ## run every fuzz target for FUZZTIME each (default 20s; CI runs 3s)
	bash scripts/fuzz.sh $${FUZZTIME:-20s}

bench: ## Go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-registry bench-registry-scale bench-registry-s3 bench-proxy bench-auth
bench-registry: ## registry beside registry v3.1.2 and docker-registry 2.8.2 (REGBENCH="-size 256MiB -tags 1000" for a quick run)
	$(GO) run ./bench/registrybench $(REGBENCH)

bench-registry-scale: ## 50-layer image, catalog, cold start, mixed load, gc and storage check at scale, beside v3.1.2 and 2.8.2 (REGBENCH="-repos 1000 -gc-blobs 10000 -gc-manifests 1000 -gc-repos 100" for a quick run)
	$(GO) run ./bench/registrybench -suite scale $(REGBENCH)

bench-registry-s3: ## on one MinIO with a Redis cache, beside v3.1.2: 1 GiB push and pull (with and without redirects), 50-layer image, manifest GET with and without Redis, RSS of a 4 GiB push (REGBENCH="-size 256MiB -rss-size 1GiB -runs 1" for a quick run)
	$(GO) run ./bench/registrybench -suite s3 $(REGBENCH)

bench-proxy: ## a 1 GiB image pulled directly and through a pull-through cache (cold, warm), v3.1.2 as a cache beside it (REGBENCH="-size 256MiB -runs 1" for a quick run)
	$(GO) run ./bench/registrybench -suite proxy $(REGBENCH)

bench-auth: ## auth-server token requests/s, p50, p99 (static user cached and cold, anonymous; AUTHBENCH="-d 5s")
	$(GO) run ./bench/authbench $(AUTHBENCH)

.PHONY: image install
IMAGE  ?= gatehouse:dev
DOCKER ?= docker
image: ## container image (IMAGE=gatehouse:dev) from a static binary built here, pulling nothing; Dockerfile builds the same from source
	IMAGE="$(IMAGE)" DOCKER="$(DOCKER)" GO="$(GO)" GO_LDFLAGS="$(LDFLAGS)" bash scripts/image.sh

PREFIX ?= /usr/local
install: ## install bin/gatehouse (make build first), systemd units, example configs (PREFIX=/usr/local, DESTDIR)
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" UNITDIR="$(UNITDIR)" bash scripts/install.sh
