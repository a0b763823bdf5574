package workload

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/pq-issuer/pq-issuer/interop"
)

// TestOpenSSLInterop pins what OpenSSL 3.5 (Node 26) and a Go 1.27 workload on go-spiffe's
// tlsconfig can do together with pq-issuer pod identities, whose chains are ML-DSA-signed whatever
// the leaf key. OpenSSL checks a workload server's chain and SPIFFE ID; mutual TLS fails both ways
// for the reason interop.TestGoOpenSSLMutualTLSGap pins (go.dev/issue/82536: Go 1.27 leaves ML-DSA
// out of signature_algorithms_cert, OpenSSL 3.5 then will not send an ML-DSA-signed chain). When
// either side changes, this test fails: turn the failures into positive cases and the README's
// interop table with them.
func TestOpenSSLInterop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca := newTestCA(t, "Mesh CA")

	type pod struct {
		src   *Source
		files interop.NodeCreds
	}
	// openPod is a workload's volume, read by a Source for Go and by path for OpenSSL.
	openPod := func(c credential) pod {
		v, src := openVolume(t, ctx, c, ca.rootPEM, time.Hour)
		bundle, trust := v.path("credentialbundle.pem"), v.path("trust-bundle.pem")
		return pod{src: src, files: interop.NodeCreds{Chain: bundle, Key: bundle, CA: trust}}
	}
	const (
		goToOpenSSL = iota // a Go workload client dials an OpenSSL server
		openSSLToGo        // an OpenSSL client dials a Go workload server
	)
	tests := []struct {
		name      string
		direction int
		// mutual: the Go side uses go-spiffe's MTLS config (else its TLS config: server
		// authentication only).
		mutual bool
		// The Go side's error, and OpenSSL's error code; both empty: the handshake completes.
		wantGoErr, wantOpenSSLErr string
	}{
		{name: "OpenSSL client, Go server authentication only", direction: openSSLToGo},
		{name: "OpenSSL client certificate, Go server requiring it", direction: openSSLToGo, mutual: true,
			wantGoErr: "tls: client didn't provide a certificate", wantOpenSSLErr: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"},
		{name: "Go client, OpenSSL server", direction: goToOpenSSL, mutual: true,
			wantGoErr: "remote error: tls: handshake failure", wantOpenSSLErr: "ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM"},
		{name: "Go client authenticating the server only, OpenSSL server", direction: goToOpenSSL,
			wantGoErr: "remote error: tls: handshake failure", wantOpenSSLErr: "ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM"},
	}
	type key struct{ test, kind string }
	var (
		nodeCases   []interop.NodeCase
		goServers   = map[key]<-chan goResult{}
		nodeServers = map[string]interop.NodeCreds{}
		pods        = map[key][2]pod{} // server api, client backend
	)
	for _, kind := range []string{"ML-DSA-65", "ECDSA-P256"} {
		for _, tc := range tests {
			k := key{tc.name, kind}
			api, backend := openPod(ca.issue(t, kind, "api", "api.shop.svc")), openPod(ca.issue(t, kind, "backend"))
			pods[k] = [2]pod{api, backend}
			name := tc.name + "/" + kind
			switch tc.direction {
			case openSSLToGo:
				cfg := tlsconfig.TLSServerConfig(api.src)
				if tc.mutual {
					cfg = tlsconfig.MTLSServerConfig(api.src, api.src, tlsconfig.AuthorizeID(backendID))
				}
				port, result := goServer(t, cfg)
				goServers[k] = result
				nodeCases = append(nodeCases, interop.NodeCase{Name: name, Op: "connect", Port: port, Servername: "api.shop.svc", Message: "hello from backend", Client: &backend.files})
			case goToOpenSSL:
				nodeServers[name] = api.files
			}
		}
	}
	ports, stopServers := interop.StartServers(t, nodeServers)
	goClientErrs := map[key]error{}
	for _, kind := range []string{"ML-DSA-65", "ECDSA-P256"} {
		for _, tc := range tests {
			k := key{tc.name, kind}
			if tc.direction != goToOpenSSL {
				continue
			}
			backend := pods[k][1]
			cfg := tlsconfig.TLSClientConfig(backend.src, tlsconfig.AuthorizeID(apiID))
			if tc.mutual {
				cfg = tlsconfig.MTLSClientConfig(backend.src, backend.src, tlsconfig.AuthorizeID(apiID))
			}
			cfg.ServerName = "api.shop.svc"
			_, _, goClientErrs[k] = dial(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[tc.name+"/"+kind])), cfg)
		}
	}
	nodeServerErrs := stopServers()
	nodeResults := interop.RunBatch(t, nodeCases)

	for _, kind := range []string{"ML-DSA-65", "ECDSA-P256"} {
		t.Run(kind+" leaves", func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					k, name := key{tc.name, kind}, tc.name+"/"+kind
					switch tc.direction {
					case openSSLToGo:
						r, node := <-goServers[k], nodeResults[name]
						if tc.wantGoErr == "" {
							if r.err != nil || r.state.Version != tls.VersionTLS13 || len(r.state.PeerCertificates) != 0 {
								t.Errorf("Go server: %v, version %#x, %d client certificates; want TLS 1.3 without a client certificate", r.err, r.state.Version, len(r.state.PeerCertificates))
							}
							// OpenSSL verified the ML-DSA-signed chain to the trust bundle and the host name,
							// and saw the server's SPIFFE ID.
							if node.Error != nil || !node.Authorized || node.Protocol != "TLSv1.3" || !strings.Contains(node.PeerCN, "URI:"+apiID.String()) ||
								node.Reply != "go to anonymous: hello from backend\n" {
								t.Errorf("OpenSSL client: %+v; want TLSv1.3, the server authorized, URI:%s, and the Go server's reply", node, apiID)
							}
							return
						}
						checkContains(t, "Go server", r.err, tc.wantGoErr)
						// OpenSSL verified the server, then the Go server ended the handshake for
						// want of the client certificate OpenSSL would not send.
						if !node.Authorized || node.Error == nil || node.Error.Code != tc.wantOpenSSLErr {
							t.Errorf("OpenSSL client: authorized=%v error %+v; want the server authorized and then %s", node.Authorized, node.Error, tc.wantOpenSSLErr)
						}
					case goToOpenSSL:
						checkContains(t, "Go client", goClientErrs[k], tc.wantGoErr)
						if errs := nodeServerErrs[name]; len(errs) != 1 || errs[0].Code != tc.wantOpenSSLErr {
							t.Errorf("OpenSSL server errors %+v; want one %s", errs, tc.wantOpenSSLErr)
						}
					}
				})
			}
		})
	}
}

func checkContains(t *testing.T, who string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want %q", who, err, want)
	}
}

type goResult struct {
	state tls.ConnectionState
	err   error
}

// goServer serves one connection with cfg: it answers the client's line with the client's SPIFFE
// ID, or "anonymous" without a client certificate, and reports the handshake.
func goServer(t *testing.T, cfg *tls.Config) (port int, _ <-chan goResult) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	result := make(chan goResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			result <- goResult{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
		if err := tc.Handshake(); err != nil {
			result <- goResult{err: err}
			return
		}
		state := tc.ConnectionState()
		peer := "anonymous"
		if len(state.PeerCertificates) > 0 {
			peer = state.PeerCertificates[0].URIs[0].String()
		}
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err == nil {
			_, err = fmt.Fprintf(tc, "go to %s: %s", peer, line)
		}
		result <- goResult{state: state, err: err}
	}()
	return ln.Addr().(*net.TCPAddr).Port, result
}
