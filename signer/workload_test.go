package signer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/hostile"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

// TestIssueWorkload is the pod path: names derived from a verified identity, whatever the stub CSR
// carries, within the policy.
func TestIssueWorkload(t *testing.T) {
	ca := newRoot(t, MLDSA65, 365*24*time.Hour)
	ecdsa := testkeys.New(t, "ECDSA-P256")
	// A stub CSR that asks for everything a pod must not get by asking.
	greedy := customCSR(t, ecdsa, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
		ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanDNS, "kubernetes.default.svc"), hostile.GeneralName(sanURI, "spiffe://cluster.local/ns/kube-system/sa/admin"))},
	})
	const sa = "api"
	tests := []struct {
		name      string
		key       string
		csr       *x509.CertificateRequest
		namespace string
		sa        string
		dnsNames  []string
		policy    Policy

		wantReason Reason
		wantText   string
		wantURI    string
		wantDNS    []string
		wantKU     x509.KeyUsage
	}{
		{name: "ECDSA pod", key: "ECDSA-P256", wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "Ed25519 pod", key: "Ed25519", wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "RSA pod keeps key encipherment out", key: "RSA-2048", wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "ML-DSA-44 pod", key: "ML-DSA-44", wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "ML-DSA-87 pod", key: "ML-DSA-87", wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "the stub CSR's subject and SANs are ignored", csr: greedy, wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "trust domain from the policy", policy: Policy{TrustDomain: "prod.example"}, wantURI: "spiffe://prod.example/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "service account with dots", sa: "build.bot", wantURI: "spiffe://cluster.local/ns/demo/sa/build.bot", wantKU: x509.KeyUsageDigitalSignature},
		{name: "DNS names the policy allows", dnsNames: []string{"api.demo.svc", "api.demo.svc.cluster.local"},
			policy:  Policy{WorkloadDNSNames: []string{"*.{namespace}.svc", "*.{namespace}.svc.cluster.local"}},
			wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantDNS: []string{"api.demo.svc", "api.demo.svc.cluster.local"}, wantKU: x509.KeyUsageDigitalSignature},
		{name: "DNS names without podCertificates.dnsNames", dnsNames: []string{"api.demo.svc"},
			wantReason: ReasonPolicyViolation, wantText: "spec.podCertificates.dnsNames is empty"},
		{name: "DNS name of another namespace", dnsNames: []string{"api.other.svc"}, policy: Policy{WorkloadDNSNames: []string{"*.{namespace}.svc"}},
			wantReason: ReasonPolicyViolation, wantText: `"api.other.svc" is not allowed: it matches none of the issuer's spec.podCertificates.dnsNames`},
		{name: "wildcard DNS name", dnsNames: []string{"*.demo.svc"}, policy: Policy{WorkloadDNSNames: []string{"*.{namespace}.svc"}},
			wantReason: ReasonPolicyViolation, wantText: "wildcard"},
		{name: "DNS name with a control character", dnsNames: []string{"api\x1b.demo.svc"}, policy: Policy{WorkloadDNSNames: []string{"*"}},
			wantReason: ReasonPolicyViolation, wantText: "not an RFC 1123 host name"},
		{name: "requester-bound policy: the pod's own ID, whoever (the kubelet) asked", policy: Policy{SPIFFERequesterBound: true},
			wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "restricted policy without the SPIFFE ID", policy: Policy{DNSNames: []string{"*.example.com"}},
			wantReason: ReasonPolicyViolation, wantText: `the URI "spiffe://cluster.local/ns/demo/sa/api" is not allowed`},
		{name: "restricted policy with the SPIFFE ID", policy: Policy{URIs: []string{"spiffe://cluster.local/ns/{namespace}/sa/*"}},
			wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKU: x509.KeyUsageDigitalSignature},
		{name: "pod DNS names must pass policy.dnsNames too", dnsNames: []string{"api.demo.svc"},
			policy:     Policy{URIs: []string{"spiffe://*/ns/{namespace}/sa/*"}, WorkloadDNSNames: []string{"*.{namespace}.svc"}},
			wantReason: ReasonPolicyViolation, wantText: `the DNS name "api.demo.svc" is not allowed`},
		{name: "key type the policy refuses", key: "Ed25519", policy: Policy{KeyAlgorithms: []KeyAlgorithm{KeyECDSA, KeyMLDSA}},
			wantReason: ReasonPolicyViolation, wantText: "allows only ECDSA, ML-DSA"},
		{name: "usages the policy refuses", policy: Policy{Usages: []string{"digital signature", "server auth"}},
			wantReason: ReasonPolicyViolation, wantText: `the usage "client auth" is not allowed`},
		{name: "not a namespace name", namespace: "Demo/../kube-system", wantReason: ReasonPolicyViolation, wantText: "not a Kubernetes namespace name"},
		{name: "not a service account name", sa: "a/b", wantReason: ReasonPolicyViolation, wantText: "not a Kubernetes service account name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			csr := tc.csr
			if csr == nil {
				key := tc.key
				if key == "" {
					key = "ECDSA-P256"
				}
				csr = leafRequest(t, testkeys.New(t, key), 0).CSR
			}
			req := LeafRequest{CSR: csr, Namespace: cmpOr(tc.namespace, "demo"), Duration: 24 * time.Hour,
				Workload: &Workload{ServiceAccount: cmpOr(tc.sa, sa), DNSNames: tc.dnsNames}, Requester: "system:node:node-1"}
			now := time.Now()
			issued, err := ca.Issue(req, tc.policy, now)
			if tc.wantReason != "" {
				wantReason(t, err, tc.wantReason)
				if !strings.Contains(err.Error(), tc.wantText) {
					t.Fatalf("error %q does not say %q", err, tc.wantText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := issued.Certificate
			if len(c.RawSubject) != 2 || len(c.Subject.Names) != 0 {
				t.Errorf("subject %q, want empty", c.Subject)
			}
			if len(c.URIs) != 1 || c.URIs[0].String() != tc.wantURI {
				t.Errorf("URIs %v, want exactly %s", c.URIs, tc.wantURI)
			}
			if !slices.Equal(c.DNSNames, tc.wantDNS) || len(c.IPAddresses)+len(c.EmailAddresses) != 0 {
				t.Errorf("DNS %q IP %v email %q, want DNS %q only", c.DNSNames, c.IPAddresses, c.EmailAddresses, tc.wantDNS)
			}
			if c.KeyUsage != tc.wantKU {
				t.Errorf("key usage %v, want %v", KeyUsageNames(c.KeyUsage), KeyUsageNames(tc.wantKU))
			}
			if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(c.ExtKeyUsage, want) {
				t.Errorf("EKU %v, want server and client auth", c.ExtKeyUsage)
			}
			// An X509-SVID with an empty subject has a critical SAN extension (RFC 5280 §4.2.1.6).
			if ext := extension(t, c, oidSubjectAltName); !ext.Critical {
				t.Error("SAN extension not critical with an empty subject")
			}
			if c.IsCA || c.NotAfter.Sub(c.NotBefore) != 24*time.Hour {
				t.Errorf("isCA %v, lifetime %s; want a leaf of 24h", c.IsCA, c.NotAfter.Sub(c.NotBefore))
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Certificate)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("the certificate does not verify against the CA: %v", err)
			}
		})
	}
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func TestSPIFFEID(t *testing.T) {
	if got, want := SPIFFEID("", "demo", "api"), "spiffe://cluster.local/ns/demo/sa/api"; got != want {
		t.Errorf("SPIFFEID = %q, want %q", got, want)
	}
	if got, want := SPIFFEID("prod.example", "demo", "api"), "spiffe://prod.example/ns/demo/sa/api"; got != want {
		t.Errorf("SPIFFEID = %q, want %q", got, want)
	}
}

// TestServiceAccountOf: only a well-formed service account user name is one.
func TestServiceAccountOf(t *testing.T) {
	tests := []struct {
		name, username string
		wantNS, wantSA string
	}{
		{name: "service account", username: "system:serviceaccount:demo:api", wantNS: "demo", wantSA: "api"},
		{name: "service account with dots", username: "system:serviceaccount:demo:build.bot", wantNS: "demo", wantSA: "build.bot"},
		{name: "user", username: "alice"},
		{name: "node", username: "system:node:node-1"},
		{name: "service accounts group", username: "system:serviceaccounts:demo"},
		{name: "no name", username: "system:serviceaccount:demo:"},
		{name: "extra segment", username: "system:serviceaccount:demo:api:x"},
		{name: "upper-case namespace", username: "system:serviceaccount:Demo:api"},
		{name: "empty", username: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, sa, ok := ServiceAccountOf(tc.username)
			if ns != tc.wantNS || sa != tc.wantSA || ok != (tc.wantNS != "") {
				t.Errorf("ServiceAccountOf(%q) = %q, %q, %v; want %q, %q", tc.username, ns, sa, ok, tc.wantNS, tc.wantSA)
			}
		})
	}
}
