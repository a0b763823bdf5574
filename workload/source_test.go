package workload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

var (
	apiID     = spiffeid.RequireFromString("spiffe://cluster.local/ns/shop/sa/api")
	backendID = spiffeid.RequireFromString("spiffe://cluster.local/ns/shop/sa/backend")
)

func openVolume(t *testing.T, ctx context.Context, c credential, rootPEM []byte, interval time.Duration) (*volume, *Source) {
	t.Helper()
	v := newVolume(t, map[string][]byte{"credentialbundle.pem": c.bundle(), "trust-bundle.pem": rootPEM})
	s, err := Open(ctx, PodCertificate(v.path("credentialbundle.pem"), v.path("trust-bundle.pem")), Options{Log: testr.New(t), Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// TestMTLS completes TLS 1.3 mutual TLS with go-spiffe's configurations over two Sources, for
// classical and ML-DSA leaves under an ML-DSA-65 CA, and refuses the wrong SPIFFE ID and a
// foreign CA on either side.
func TestMTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca, foreign := newTestCA(t, "Mesh CA"), newTestCA(t, "Foreign CA")
	tests := []struct {
		name                     string
		serverKey, clientKey     string
		serverCA, clientCA       *testCA
		serverWants, clientWants spiffeid.ID
		wantClientErr            string
		wantServerErr            string
	}{
		{name: "ECDSA leaves", serverKey: "ECDSA-P256", clientKey: "ECDSA-P256", serverCA: ca, clientCA: ca, serverWants: apiID, clientWants: backendID},
		{name: "Ed25519 server, ML-DSA-65 client", serverKey: "Ed25519", clientKey: "ML-DSA-65", serverCA: ca, clientCA: ca, serverWants: apiID, clientWants: backendID},
		{name: "ML-DSA-87 server, RSA client", serverKey: "ML-DSA-87", clientKey: "RSA-2048", serverCA: ca, clientCA: ca, serverWants: apiID, clientWants: backendID},
		{name: "client refuses the wrong server ID", serverKey: "ECDSA-P256", clientKey: "ECDSA-P256", serverCA: ca, clientCA: ca, serverWants: apiID, clientWants: apiID,
			wantClientErr: `unexpected ID "spiffe://cluster.local/ns/shop/sa/backend"`, wantServerErr: "bad certificate"},
		{name: "server refuses the wrong client ID", serverKey: "ECDSA-P256", clientKey: "ECDSA-P256", serverCA: ca, clientCA: ca, serverWants: backendID, clientWants: backendID,
			wantClientErr: "bad certificate", wantServerErr: `unexpected ID "spiffe://cluster.local/ns/shop/sa/api"`},
		{name: "client refuses a server of a foreign CA", serverKey: "ML-DSA-65", clientKey: "ECDSA-P256", serverCA: foreign, clientCA: ca, serverWants: apiID, clientWants: backendID,
			wantClientErr: "x509: certificate signed by unknown authority", wantServerErr: "bad certificate"},
		{name: "server refuses a client of a foreign CA", serverKey: "ECDSA-P256", clientKey: "ML-DSA-65", serverCA: ca, clientCA: foreign, serverWants: apiID, clientWants: backendID,
			wantClientErr: "bad certificate", wantServerErr: "x509: certificate signed by unknown authority"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each side trusts only the mesh CA; the foreign one signs an impostor.
			_, server := openVolume(t, ctx, tc.serverCA.issue(t, tc.serverKey, "backend"), ca.rootPEM, time.Hour)
			_, client := openVolume(t, ctx, tc.clientCA.issue(t, tc.clientKey, "api"), ca.rootPEM, time.Hour)
			addr, serverErrs := serveTLS(t, tlsconfig.MTLSServerConfig(server, server, tlsconfig.AuthorizeID(tc.serverWants)))
			state, reply, err := dial(addr, tlsconfig.MTLSClientConfig(client, client, tlsconfig.AuthorizeID(tc.clientWants)))
			if tc.wantClientErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantClientErr) {
					t.Errorf("client: %v, want %q", err, tc.wantClientErr)
				}
				if err := waitErr(serverErrs); err == nil || !strings.Contains(err.Error(), tc.wantServerErr) {
					t.Errorf("server: %v, want %q", err, tc.wantServerErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if state.Version != tls.VersionTLS13 || state.PeerCertificates[0].SignatureAlgorithm != x509.MLDSA65 {
				t.Errorf("version %#x, server leaf signed with %s; want TLS 1.3 and ML-DSA-65", state.Version, state.PeerCertificates[0].SignatureAlgorithm)
			}
			if reply != "hello "+apiID.String()+"\n" {
				t.Errorf("reply %q", reply)
			}
		})
	}
}

func waitErr(errs <-chan error) error {
	select {
	case err := <-errs:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("no handshake error within 5s")
	}
}
