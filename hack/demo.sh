#!/usr/bin/env bash
# make demo: pq-issuer on a local control plane (kube-apiserver, etcd, cert-manager, trust-manager
# and pq-issuer's controllers in one process; no Docker). An ML-DSA-65 root made with kubectl-pq
# goes into a Secret behind a PQClusterIssuer; cert-manager issues two Certificates and a Gateway's
# listener certificate through it; Node 26 / OpenSSL 3.5 verifies the chains and completes a
# mutual-TLS handshake with the issued Secrets. Then two pods get SPIFFE identities through
# podCertificate volumes, written by a node that runs the kubelet's own podcertificate manager, and
# OpenSSL completes mutual TLS between them, checking each peer's SPIFFE ID; so does the Go agent
# examples/spiffe-mtls (go-spiffe over the workload package), which also refuses a wrong peer.
# Everything is removed at the end.
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
bin=$root_dir/bin
node=${PQ_NODE:?PQ_NODE must name the Node 26 binary (make node)}
work=$(mktemp -d)
cluster_pid=
agent_pid=
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -s "$work/cluster.log" ]; then
    echo "DEMO FAILED (exit $rc); the last lines of the control plane's log:"
    tail -40 "$work/cluster.log"
  fi
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill "$agent_pid" && wait "$agent_pid" || true
  fi
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -INT "$cluster_pid" && wait "$cluster_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$work|\$DEMO|g; s|$bin/||g; s|--kubeconfig [^ ]* ||"; "$@"; }
kubectl() { "$bin/kubectl" --kubeconfig "$work/kubeconfig" "$@"; }
# kubectl describe prints the base64 PEM blobs in full; the demo shortens them to what a person reads.
elide() { sed -E 's/([A-Za-z0-9+/=]{40})[A-Za-z0-9+/=]{40,}/\1.../'; }

step "Start the local control plane with pq-issuer's controllers (log: \$DEMO/cluster.log)"
started=$(date +%s)
(cd "$root_dir/e2e" && exec "$bin/localcluster" --bin-dir "$bin" --kubeconfig "$work/kubeconfig" --nodes node-1 --nodes-dir "$work/nodes") >"$work/cluster.log" 2>&1 &
cluster_pid=$!
for _ in $(seq 1 240); do
  [ -s "$work/kubeconfig" ] && break
  kill -0 "$cluster_pid" 2>/dev/null || { cat "$work/cluster.log"; echo "DEMO FAILED: the local control plane did not start"; exit 1; }
  sleep 0.5
done
[ -s "$work/kubeconfig" ] || { tail -50 "$work/cluster.log"; echo "DEMO FAILED: no kubeconfig after 120s"; exit 1; }
echo "kube-apiserver, etcd, cert-manager, trust-manager and pq-issuer up in $(( $(date +%s) - started ))s"

step "An offline ML-DSA-65 root, made with kubectl-pq, becomes the Secret of a PQClusterIssuer"
run "$bin/kubectl-pq" ca create --algorithm ML-DSA-65 --subject "CN=Mesh Root,O=Example" --duration 8760h --out-dir "$work/root"
"$bin/kubectl-pq" ca secret --ca-dir "$work/root" --name mesh-ca --namespace cert-manager >"$work/secret.yaml"
run kubectl apply -f "$work/secret.yaml"
run kubectl apply -f "$root_dir/config/samples/pqclusterissuer.yaml"
run kubectl wait --for=condition=Ready pqclusterissuer/mesh-ca --timeout=60s

step "Certificates (ECDSA P-256 keys from cert-manager) and a Gateway, issued through pq-issuer"
run kubectl apply -f "$root_dir/config/samples/certificates.yaml" -f "$root_dir/config/samples/gateway.yaml"
for _ in $(seq 1 120); do kubectl get certificate -n demo edge-tls >/dev/null 2>&1 && break; sleep 0.5; done
run kubectl wait --for=condition=Ready -n demo certificate/api certificate/web certificate/edge-tls --timeout=120s

step "What an operator sees"
run kubectl get pqclusterissuers,certificates,certificaterequests -A
cr=$(kubectl get certificaterequest -n demo -o jsonpath='{range .items[?(@.metadata.ownerReferences[0].name=="api")]}{.metadata.name}{end}')
run kubectl describe certificaterequest -n demo "$cr" | elide

step "The issued Secret, inspected with kubectl-pq"
for s in api web; do
  for k in tls.crt ca.crt tls.key; do
    kubectl get secret -n demo "$s-tls" -o "jsonpath={.data.${k//./\\.}}" | base64 -d >"$work/$s.$k"
  done
done
cat "$work/api.tls.crt" "$work/api.ca.crt" >"$work/api-chain.pem"
run "$bin/kubectl-pq" inspect "$work/api-chain.pem"

step "OpenSSL $("$node" -p process.versions.openssl) (Node $("$node" -p process.version)): verify the chains, then mutual TLS between api and web"
cat >"$work/manifest.json" <<JSON
{"cases": [
  {"name": "api chain", "op": "verify", "chain": "$work/api.tls.crt", "ca": "$work/api.ca.crt"},
  {"name": "web chain", "op": "verify", "chain": "$work/web.tls.crt", "ca": "$work/web.ca.crt"},
  {"name": "mTLS", "op": "mtls", "servername": "localhost", "message": "hello from web",
   "server": {"chain": "$work/api.tls.crt", "key": "$work/api.tls.key", "ca": "$work/api.ca.crt"},
   "client": {"chain": "$work/web.tls.crt", "key": "$work/web.tls.key", "ca": "$work/web.ca.crt"}}
]}
JSON
"$node" "$root_dir/interop/testdata/batch.mjs" "$work/manifest.json" >"$work/results.json"
"$node" "$root_dir/hack/demo-check.mjs" "$work/manifest.json" "$work/results.json"

step "Pod identities: two pods mount podCertificate volumes; the node's kubelet code asks, pq-issuer signs"
echo "(No container runs here: node-1 is the kubelet's own podcertificate and ClusterTrustBundle managers, writing each pod's volume.)"
run kubectl create namespace shop
run kubectl create serviceaccount -n shop api
run kubectl create serviceaccount -n shop backend
run kubectl apply -f "$root_dir/config/samples/pod-identity.yaml"
sed -e 's/name: api, namespace: shop/name: backend, namespace: shop/' -e 's/serviceAccountName: api/serviceAccountName: backend/' \
  -e 's/keyType: ECDSAP256 /keyType: ED25519   /' -e 's/pq-issuer.dev\/dns-names: api.shop.svc/pq-issuer.dev\/dns-names: backend.shop.svc/' \
  "$root_dir/config/samples/pod-identity.yaml" >"$work/backend.yaml"
run kubectl apply -f "$work/backend.yaml"
echo "# No scheduler runs either: bind both pods to node-1 as it would."
for pod in api backend; do
  printf 'apiVersion: v1\nkind: Binding\nmetadata: {name: %s, namespace: shop}\ntarget: {kind: Node, name: node-1}\n' "$pod" | kubectl create -f - >/dev/null
done
volume() { echo "$work/nodes/node-1/pods/$(kubectl get pod -n shop "$1" -o jsonpath='{.metadata.uid}')/volumes/kubernetes.io~projected/identity"; }
for pod in api backend; do
  for _ in $(seq 1 120); do [ -s "$(volume "$pod")/credentialbundle.pem" ] && [ -s "$(volume "$pod")/trust-bundle.pem" ] && break; sleep 0.5; done
  [ -s "$(volume "$pod")/credentialbundle.pem" ] || { kubectl get podcertificaterequests -n shop -o yaml; echo "DEMO FAILED: no credentials for pod $pod"; exit 1; }
done
run kubectl get podcertificaterequests,clustertrustbundles -A
run kubectl get events -n shop --field-selector involvedObject.kind=PodCertificateRequest
run ls "$(volume api)"
sed -n '/BEGIN CERTIFICATE/,$p' "$(volume api)/credentialbundle.pem" >"$work/api-pod-chain.pem"
run "$bin/kubectl-pq" inspect "$work/api-pod-chain.pem"

step "OpenSSL $("$node" -p process.versions.openssl): the pods' chains verify against their trust bundle; mutual TLS checks each peer's SPIFFE ID"
cat >"$work/pods.json" <<JSON
{"cases": [
  {"name": "api pod chain", "op": "verify", "chain": "$(volume api)/credentialbundle.pem", "ca": "$(volume api)/trust-bundle.pem"},
  {"name": "backend pod chain", "op": "verify", "chain": "$(volume backend)/credentialbundle.pem", "ca": "$(volume backend)/trust-bundle.pem"},
  {"name": "backend -> api mTLS", "op": "mtls", "servername": "api.shop.svc", "message": "hello from backend",
   "expectServerID": "spiffe://cluster.local/ns/shop/sa/api", "expectClientID": "spiffe://cluster.local/ns/shop/sa/backend",
   "server": {"chain": "$(volume api)/credentialbundle.pem", "key": "$(volume api)/credentialbundle.pem", "ca": "$(volume api)/trust-bundle.pem"},
   "client": {"chain": "$(volume backend)/credentialbundle.pem", "key": "$(volume backend)/credentialbundle.pem", "ca": "$(volume backend)/trust-bundle.pem"}}
]}
JSON
"$node" "$root_dir/interop/testdata/batch.mjs" "$work/pods.json" >"$work/pods-results.json"
"$node" "$root_dir/hack/demo-check.mjs" "$work/pods.json" "$work/pods-results.json"

step "Go 1.27 (go-spiffe over pq-issuer's workload package): examples/spiffe-mtls serves on api's volume, dials from backend's"
api_id=spiffe://cluster.local/ns/shop/sa/api
backend_id=spiffe://cluster.local/ns/shop/sa/backend
printf '$ spiffe-mtls -dir %s -listen 127.0.0.1:0 -peer %s &\n' "$(volume api)" "$backend_id" | sed "s|$work|\$DEMO|g"
"$bin/spiffe-mtls" -dir "$(volume api)" -listen 127.0.0.1:0 -peer "$backend_id" >"$work/agent.out" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 1 40); do grep -qs '^listening on ' "$work/agent.log" && break; sleep 0.25; done
addr=$(sed -n 's/^listening on //p' "$work/agent.log")
[ -n "$addr" ] || { cat "$work/agent.log"; echo "DEMO FAILED: spiffe-mtls did not start listening"; exit 1; }
run "$bin/spiffe-mtls" -dir "$(volume backend)" -dial "$addr" -peer "$api_id"
echo "# A client that expects another service account refuses api:"
if run "$bin/spiffe-mtls" -dir "$(volume backend)" -dial "$addr" -peer spiffe://cluster.local/ns/shop/sa/payments; then
  echo "DEMO FAILED: spiffe-mtls accepted api as spiffe://cluster.local/ns/shop/sa/payments"; exit 1
fi
for _ in $(seq 1 40); do [ "$(wc -l <"$work/agent.out")" -ge 2 ] && break; sleep 0.25; done
kill "$agent_pid"; wait "$agent_pid" || true; agent_pid=
echo "# What the server on api's volume loaded and saw:"
grep '"Loaded' "$work/agent.log"
cat "$work/agent.out"
grep -q "^accepted $backend_id " "$work/agent.out" && grep -q '^refused .*bad certificate' "$work/agent.out" ||
  { echo "DEMO FAILED: the server did not accept backend once and see the wrong-peer client refuse it"; exit 1; }

step "Stop the local control plane"
kill -INT "$cluster_pid"; wait "$cluster_pid" || true; cluster_pid=
echo
echo "Demo passed in $(( $(date +%s) - started ))s: cert-manager Certificates and pod identities signed by an ML-DSA-65 CA through pq-issuer, verified and used by OpenSSL 3.5 and by Go 1.27 with go-spiffe."
