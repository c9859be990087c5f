# Lethe build and test entry points. `make test` is what CI runs: it installs
# what the tests need (npm packages, Chromium), checks that the committed
# generated code and web bundles match their sources, and runs every test.
SHELL := /bin/bash
GO    ?= go
NPM   ?= npm
BIN   := bin/lethe
MODULE := github.com/lethehq/lethe
# Go tools pinned in tools/go.mod, kept out of the server's module graph.
GOTOOL := $(GO) tool -modfile=tools/go.mod

.PHONY: test deps chromium generate web lint check-generated go-test unit e2e bin run clean fuzz

test: deps lint check-generated go-test unit e2e

deps: node_modules/.installed chromium

node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

chromium:
	@bash scripts/ensure-chromium.sh

# Regenerate gen/ from proto/ (Go with local plugins pinned in tools/go.mod,
# TypeScript with protoc-gen-es from node_modules).
generate: node_modules/.installed
	node_modules/.bin/buf generate

# Rebuild the widget and console bundles into server/web/static.
web: node_modules/.installed
	$(NPM) run --silent build

lint: node_modules/.installed
	node_modules/.bin/buf lint
	node_modules/.bin/buf format --diff --exit-code
	@test -z "$$(gofmt -l server sdk gen)" || { gofmt -l server sdk gen; echo "gofmt: files above need formatting"; exit 1; }
	@test -z "$$($(GOTOOL) goimports -local $(MODULE) -l server sdk)" || { $(GOTOOL) goimports -local $(MODULE) -l server sdk; echo "goimports: imports above need grouping (std, third party, $(MODULE))"; exit 1; }
	$(GO) vet ./...
	$(GOTOOL) staticcheck ./...
	$(NPM) run --silent typecheck

# Fails if regenerating or rebuilding changes anything that is committed.
check-generated: generate web
	@changes="$$(git status --porcelain -- gen server/web/static sdk/ts/dist BENCHMARKS.md)"; \
	if [ -n "$$changes" ]; then \
		echo "$$changes"; git --no-pager diff --stat -- gen server/web/static sdk/ts/dist BENCHMARKS.md; \
		echo "check-generated: gen/, the bundles or the size table in BENCHMARKS.md differ from their sources; run 'make generate web' and commit"; exit 1; \
	fi

go-test:
	$(GO) test -race -count=1 ./...

# TypeScript unit tests (*.test.ts next to the code) under Node's test runner.
unit: node_modules/.installed
	$(NPM) run --silent test:unit

# Fuzzing beyond the seed corpus (not part of `make test`): every Go fuzz
# target in turn for FUZZTIME each (`make fuzz FUZZTIME=10s`). A crasher found
# is written by go test to <package>/testdata/fuzz/FuzzX/; commit it and it is
# a seed that every `go test` replays from then on. Fails if any target fails.
FUZZTIME ?= 2m
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

bin:
	$(GO) build -o $(BIN) ./server/cmd/lethe
	$(GO) build -o bin/webapp ./sdk/go/examples/webapp

# End-to-end: the built binary on a random port, driven by Debian's Chromium.
e2e: bin deps
	LETHE_BIN=$(CURDIR)/$(BIN) node --test --test-concurrency=1 e2e/

run:
	$(GO) run ./server/cmd/lethe

clean:
	rm -rf bin node_modules
