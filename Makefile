# Tripline. `make help` lists the targets.
GO       ?= go
BIN      ?= bin/sensor
PKGS     ?= ./...
# How much each fuzz target runs in `make test`. A count, not a duration: a
# duration races Go's fuzz coordinator at the deadline and fails with a bare
# "context deadline exceeded" (golang/go#75804, unfixed in go1.26).
FUZZTIME ?= 50000x

.DEFAULT_GOAL := help
.PHONY: help deps build generate test unit fuzz bench detect run vet clean live-test provision-check image vm-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install what build and tests need (apt packages; idempotent, root only)
	@scripts/deps.sh

build: ## build bin/sensor
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/sensor

generate: deps ## rebuild the BPF objects with bpf2go (needs clang)
	$(GO) generate ./internal/capture/...

vet:
	$(GO) vet $(PKGS)

unit: ## run all tests once (privileged ones need root)
	$(GO) test -count=1 -p 2 -timeout 20m $(PKGS)

fuzz: ## run every fuzz target briefly
	@set -e; for pkg in $$($(GO) list -f '{{.Dir}}' $(PKGS)); do \
		for f in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$pkg/*_test.go 2>/dev/null | awk '{print $$2}'); do \
			echo "fuzz $$f ($$pkg)"; \
			(cd $$pkg && $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) .) || exit 1; \
		done; \
	done

test: deps vet unit fuzz ## install deps, vet, run all tests and the fuzzers briefly

bench: deps ## run the benchmarks (ratios and ns/op); root for the capture ones
	$(GO) test -count=1 -run '^$$' -bench . -benchmem -timeout 30m $(PKGS)

detect: deps ## detection report: attack scenarios in real containers, upstream Falco rules vs the default rules (root)
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkDetect$$' -benchtime 1x -timeout 20m ./cmd/sensor

run: deps build ## run the sensor with the default rules and an embedded NATS
	$(BIN) run --rules rules/ --data-dir .data

live-test: build ## live rule tests: run each test's snippet with the probes attached (root)
	$(BIN) rules test --live rules/tests

provision-check: ## report what scripts/provision.sh would install (changes nothing)
	PROVISION_REPO=$(CURDIR) scripts/provision.sh --check

image: ## build the container image (needs a Docker engine)
	docker build -t ghcr.io/tripline/sensor:$(or $(VERSION),dev) --build-arg VERSION=$(or $(VERSION),dev) --build-arg REVISION=$$(git rev-parse HEAD) .

vm-test: ## provision the Vagrant VM and run the live rule tests in it
	vagrant up --provision
	vagrant ssh -c 'sudo /vagrant/bin/sensor rules test --live /home/vagrant/tripline/rules/tests'

clean:
	rm -rf bin .data
