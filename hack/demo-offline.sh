#!/usr/bin/env bash
# make demo-offline: the offline-root story with kubectl-pq, checked by OpenSSL 3.5.
# An ML-DSA-65 root stays on this machine; an ML-DSA-65 issuing CA is what a
# cluster would hold; a server (ECDSA-P256, the cert-manager default) and a
# client (ML-DSA-65) get certificates; Node 26 / OpenSSL 3.5 verifies both
# chains and completes a TLS 1.3 mutual-TLS handshake with them.
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
pq=${PQ_KUBECTL_PQ:-$root_dir/bin/kubectl-pq}
node=${PQ_NODE:?PQ_NODE must name the Node 26 binary (make node)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$work|\$DEMO|g; s|$root_dir/bin/||g"; "$@"; }

step "An offline ML-DSA-65 root and the issuing CA a cluster would hold"
run "$pq" ca create --algorithm ML-DSA-65 --subject "CN=Mesh Root,O=Example" --duration 87600h --out-dir "$work/root"
run "$pq" ca intermediate --ca-dir "$work/root" --subject "CN=Mesh Issuing CA,O=Example" --duration 8760h --out-dir "$work/issuing"
# The data values (the CA key among them) are elided.
run "$pq" ca secret --ca-dir "$work/issuing" --name mesh-ca --namespace cert-manager | sed -E 's/^(  (ca|tls)\.(crt|key): ).*/\1.../'

step "Keys and CSRs for a server (ECDSA-P256) and a client (ML-DSA-65)"
run "$pq" csr --algorithm ECDSA-P256 --common-name api.demo.svc --dns localhost --ip 127.0.0.1 --out-dir "$work/server"
run "$pq" csr --algorithm ML-DSA-65 --common-name web --uri spiffe://cluster.local/ns/demo/sa/web --out-dir "$work/client"

step "Sign both (cert-manager's default usages include key encipherment; watch the notes: RFC 8813 for ECDSA, RFC 9881 for ML-DSA)"
for who in server client; do
  run "$pq" sign --ca-dir "$work/issuing" --csr "$work/$who/csr.pem" --duration 24h --namespace demo \
    --usages "digital signature,key encipherment,server auth,client auth" >"$work/$who/tls.crt"
done

step "Inspect the client's chain (OpenSSL 3.0 cannot print ML-DSA; kubectl-pq can)"
cat "$work/client/tls.crt" "$work/root/tls.crt" >"$work/client/bundle.pem"
run "$pq" inspect "$work/client/bundle.pem"

step "OpenSSL $("$node" -p process.versions.openssl) (Node $("$node" -p process.version)): verify both chains, then mutual TLS"
cat >"$work/manifest.json" <<JSON
{"cases": [
  {"name": "server chain", "op": "verify", "chain": "$work/server/tls.crt", "ca": "$work/root/tls.crt"},
  {"name": "client chain", "op": "verify", "chain": "$work/client/tls.crt", "ca": "$work/root/tls.crt"},
  {"name": "mTLS", "op": "mtls", "servername": "localhost", "message": "hello from the demo",
   "server": {"chain": "$work/server/tls.crt", "key": "$work/server/tls.key", "ca": "$work/root/tls.crt"},
   "client": {"chain": "$work/client/tls.crt", "key": "$work/client/tls.key", "ca": "$work/root/tls.crt"}}
]}
JSON
"$node" "$root_dir/interop/testdata/batch.mjs" "$work/manifest.json" >"$work/results.json"
"$node" "$root_dir/hack/demo-check.mjs" "$work/manifest.json" "$work/results.json"
echo
echo 'Offline demo passed: certificates from an ML-DSA CA, verified and used by OpenSSL 3.5.'
