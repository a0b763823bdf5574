# Local control plane: kube-apiserver, etcd and kubectl built from Go modules into $(BIN), and the
# e2e tests that run cert-manager's controllers against them. Included by the root Makefile, which
# exports GOTOOLCHAIN and defines BIN.

E2E_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
E2E_TOOLS_DIR := $(E2E_DIR)/tools
GO ?= go

# The stamp names the pinned versions, so bumping them in e2e/tools/go.mod rebuilds the binaries
# and nothing else does.
E2E_KUBERNETES_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ { print $$2; exit }' $(E2E_TOOLS_DIR)/go.mod)
E2E_ETCD_VERSION := $(shell awk '$$1 == "go.etcd.io/etcd/server/v3" && $$2 ~ /^v/ { print $$2; exit }' $(E2E_TOOLS_DIR)/go.mod)
E2E_TOOLS_STAMP := $(BIN)/.tools-kubernetes-$(E2E_KUBERNETES_VERSION)-etcd-$(E2E_ETCD_VERSION)
E2E_K8S_MAJOR_MINOR := $(subst ., ,$(patsubst v%,%,$(E2E_KUBERNETES_VERSION)))
# What an official Kubernetes build stamps in, so `--version` reports the real release. Like the
# official server binaries they are static (CGO_ENABLED=0), so a cached bin/ survives a new glibc.
E2E_K8S_LDFLAGS := -s -w $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version, \
	-X $(pkg).gitVersion=$(E2E_KUBERNETES_VERSION) \
	-X $(pkg).gitMajor=$(word 1,$(E2E_K8S_MAJOR_MINOR)) \
	-X $(pkg).gitMinor=$(word 2,$(E2E_K8S_MAJOR_MINOR)) \
	-X $(pkg).gitTreeState=clean)

E2E_TEST_FLAGS ?= -count=1 -timeout=30m -v

##@ Local control plane

.PHONY: tools
tools: ## Build bin/kube-apiserver, bin/etcd and bin/kubectl from Go modules (cached per pinned version)
	@set -e; \
	if [ -z "$(E2E_KUBERNETES_VERSION)" ] || [ -z "$(E2E_ETCD_VERSION)" ]; then \
		echo "ERROR: cannot read the k8s.io/kubernetes and go.etcd.io/etcd/server/v3 versions from $(E2E_TOOLS_DIR)/go.mod" >&2; exit 1; \
	fi; \
	if [ -f "$(E2E_TOOLS_STAMP)" ] && [ -x "$(BIN)/kube-apiserver" ] && [ -x "$(BIN)/etcd" ] && [ -x "$(BIN)/kubectl" ]; then \
		echo "Tools up to date: kubernetes $(E2E_KUBERNETES_VERSION), etcd $(E2E_ETCD_VERSION) in $(BIN)"; exit 0; \
	fi; \
	mkdir -p "$(BIN)"; rm -f "$(BIN)"/.tools-*; \
	echo "Building tools into $(BIN): kubernetes $(E2E_KUBERNETES_VERSION), etcd $(E2E_ETCD_VERSION) (cold: about 10 minutes on 2 cores)"; \
	for tool in "etcd go.etcd.io/etcd/server/v3 -s -w" \
		"kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver $(E2E_K8S_LDFLAGS)" \
		"kubectl k8s.io/kubernetes/cmd/kubectl $(E2E_K8S_LDFLAGS)"; do \
		set -- $$tool; name=$$1; pkg=$$2; shift 2; \
		echo ">> $$name ($$pkg)"; start=$$(date +%s); \
		if ! (cd "$(E2E_TOOLS_DIR)" && CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$$*" -o "$(BIN)/$$name" "$$pkg"); then \
			echo "ERROR: building $$name from $$pkg failed (module $(E2E_TOOLS_DIR)); see the compiler output above" >&2; exit 1; \
		fi; \
		echo "   $$name built in $$(( $$(date +%s) - start ))s"; \
	done; \
	touch "$(E2E_TOOLS_STAMP)"; \
	"$(BIN)/kube-apiserver" --version; "$(BIN)/etcd" --version; "$(BIN)/kubectl" version --client

# The local control plane's node, which runs the kubelet's pod certificate code, and Kubernetes'
# reference PodCertificateRequest signer: small commands of the e2e/tools module. Unlike the
# binaries above they change with this repository, so they are built on every run. When nothing
# changed, the Go build cache makes that take seconds.
.PHONY: kubelet-podcerts
kubelet-podcerts: ## Build bin/kubelet-podcerts (a node for the local control plane: the kubelet's pod certificate code) and bin/reference-signer
	cd $(E2E_TOOLS_DIR) && CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(E2E_K8S_LDFLAGS)" -o $(BIN)/ ./cmd/kubelet-podcerts ./cmd/reference-signer

.PHONY: test-e2e
test-e2e: tools kubelet-podcerts node helm ## Run the e2e tests: real kube-apiserver, etcd, cert-manager, trust-manager and pq-issuer controllers
	cd $(E2E_DIR) && PQ_NODE=$(NODE) PQ_HELM=$(HELM) $(GO) test $(E2E_TEST_FLAGS) ./...

# Who approves CertificateRequests in `make local-cluster`: cert-manager (its approver, which
# approves every request), approver-policy (CertificateRequestPolicies decide; cert-manager runs
# without its approver) or none.
APPROVER ?= cert-manager

# exec, so Ctrl-C and SIGTERM reach the command directly; it runs in e2e/ because it finds the CRDs
# through the e2e module.
.PHONY: local-cluster
local-cluster: tools kubelet-podcerts ## Run the local control plane in the foreground; kubeconfig at bin/local/kubeconfig; APPROVER=approver-policy for approver-policy
	cd $(E2E_DIR) && $(GO) build -o $(BIN)/localcluster ./cmd/localcluster
	cd $(E2E_DIR) && exec $(BIN)/localcluster --bin-dir=$(BIN) --kubeconfig=$(BIN)/local/kubeconfig --approver=$(APPROVER)

N ?= 1000
BENCH_BATCH ?= 100
# What bench-e2e issues: certificates (cert-manager Certificates, against cert-manager's CA issuer)
# or pods (pods' PodCertificateRequests, against Kubernetes' reference signer).
MODE ?= certificates
BENCH_PROFILE := $(BIN)/bench/pq-issuer$(if $(filter pods,$(MODE)),-pods).cpu.pprof

# Not a test: figures, written to docs/benchmarks.md, with the CPU profile of pq-issuer beside bin/.
.PHONY: bench-e2e
bench-e2e: build tools kubelet-podcerts ## Issue N Certificates (default 1000) through pq-issuer and cert-manager's CA issuer, or with MODE=pods N pod certificates through pq-issuer and Kubernetes' reference signer; write docs/benchmarks.md
	cd $(E2E_DIR) && $(GO) run ./cmd/bench-e2e -mode $(MODE) -n $(N) -batch $(BENCH_BATCH) -bin-dir $(BIN) \
		-out $(abspath $(E2E_DIR)/../docs/benchmarks.md) -profile $(BENCH_PROFILE)
	@echo; echo "pq-issuer CPU profile, top functions (go tool pprof -top):"
	@$(GO) tool pprof -top -nodecount 25 $(BIN)/pq-issuer $(BENCH_PROFILE) 2>/dev/null | sed -n '1,32p'
