package main

import (
	"crypto/x509/pkix"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pq-issuer/pq-issuer/internal/hostile"
)

// TestSignHostileRequests runs the hostile-request table through kubectl pq sign, the offline path:
// each request is refused with the builder's words, or issued without the offending part. The
// e2e test TestHostileRequests runs the same table through the controller.
func TestSignHostileRequests(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	upnIssuer := filepath.Join(dir, "upn-issuer.yaml")
	writeFile(t, upnIssuer, []byte(`apiVersion: pq-issuer.dev/v1alpha1
kind: PQClusterIssuer
metadata:
  name: upn
spec:
  caSecretName: upn-ca
  policy:
    otherNames: ["1.3.6.1.4.1.311.20.2.3"]
`))
	for i, req := range hostile.Requests(t, "demo", pkix.Name{CommonName: "Mesh Issuing CA"}) {
		t.Run(req.Name, func(t *testing.T) {
			csr := filepath.Join(dir, strings.Repeat("x", i+1)+".pem")
			writeFile(t, csr, req.CSR)
			args := []string{"sign", "--ca-dir", fx.issuing, "--csr", csr, "--namespace", "demo",
				"--duration", req.Duration.String(), "--usages", strings.Join(req.Usages, ",")}
			if req.UPNPolicy {
				args = append(args, "--issuer", upnIssuer)
			}
			r := runCLI(t, args...)
			if req.Refused != "" {
				if r.code != 1 || !strings.Contains(r.stderr, req.Refused) || r.stdout != "" {
					t.Fatalf("exit %d, stdout %d bytes, stderr %q; want exit 1 and %q", r.code, len(r.stdout), r.stderr, req.Refused)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q; want the certificate", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, req.Note) || (req.Note == "" && r.stderr != "") {
				t.Fatalf("stderr %q, want the note %q", r.stderr, req.Note)
			}
			if err := req.Check(parseCerts(t, []byte(r.stdout))[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}
