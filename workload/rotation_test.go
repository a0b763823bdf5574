package workload

import (
	"context"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// TestRotationUnderLoad keeps a client opening connections while both pods' volumes are replaced,
// as the kubelet replaces them: new certificates three times, then a bundle with the new CA's root
// beside the old one, then certificates of the new CA, then a bundle without the old root; in
// between, a half-written file and a key that does not match its certificate, which must never be
// served. No handshake may fail, and every good change must be presented within a bound.
func TestRotationUnderLoad(t *testing.T) {
	const (
		interval    = 100 * time.Millisecond
		bound       = 2 * time.Second // interval plus scheduling slack on a loaded 2-core machine
		connections = 2000
		pace        = 10 * time.Millisecond // 2,000 connections over about 20 s
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	oldCA, newCA := newTestCA(t, "Mesh CA 1"), newTestCA(t, "Mesh CA 2")
	serverVol, server := openVolume(t, ctx, oldCA.issue(t, "ECDSA-P256", "backend"), oldCA.rootPEM, interval)
	clientVol, client := openVolume(t, ctx, oldCA.issue(t, "ML-DSA-65", "api"), oldCA.rootPEM, interval)
	addr, serverErrs := serveTLS(t, tlsconfig.MTLSServerConfig(server, server, tlsconfig.AuthorizeID(apiID)))
	clientCfg := tlsconfig.MTLSClientConfig(client, client, tlsconfig.AuthorizeID(backendID))

	var (
		mu       sync.Mutex
		failures []error
		done     = make(chan int)
	)
	go func() {
		n := 0
		for ; n < connections; n++ {
			if _, _, err := dial(addr, clientCfg); err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
			time.Sleep(pace)
		}
		done <- n
	}()

	// presented waits until a handshake shows the server's leaf want, and says how long it took.
	presented := func(want *x509.Certificate) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < bound {
			if state, _, err := dial(addr, clientCfg); err == nil && state.PeerCertificates[0].Equal(want) {
				return time.Since(start)
			}
			time.Sleep(interval / 4)
		}
		t.Fatalf("the server did not present certificate %x within %s", want.SerialNumber, bound)
		return 0
	}
	// kept checks for a few intervals that the server still presents want.
	kept := func(want *x509.Certificate) {
		t.Helper()
		for range 5 {
			time.Sleep(interval)
			state, _, err := dial(addr, clientCfg)
			if err != nil || !state.PeerCertificates[0].Equal(want) {
				t.Fatalf("after a bad write: handshake %v, want certificate %x still presented", err, want.SerialNumber)
			}
		}
	}
	rotate := func(v *volume, c credential, rootsPEM []byte) {
		v.write(t, map[string][]byte{"credentialbundle.pem": c.bundle(), "trust-bundle.pem": rootsPEM})
	}
	bothRoots := append(append([]byte{}, oldCA.rootPEM...), newCA.rootPEM...)
	current := server.svid.Load().svid.Certificates[0]

	for i := range 3 {
		time.Sleep(2 * time.Second)
		c := oldCA.issue(t, "ECDSA-P256", "backend")
		rotate(clientVol, oldCA.issue(t, "ML-DSA-65", "api"), oldCA.rootPEM)
		rotate(serverVol, c, oldCA.rootPEM)
		t.Logf("rotation %d: new server certificate presented after %s", i+1, presented(c.leaf))
		current = c.leaf
	}

	time.Sleep(time.Second)
	half := oldCA.issue(t, "ECDSA-P256", "backend").bundle()
	rotate(serverVol, credential{keyPEM: half[:len(half)/2]}, oldCA.rootPEM)
	kept(current)
	other := oldCA.issue(t, "ECDSA-P256", "backend")
	rotate(serverVol, credential{keyPEM: other.keyPEM, chainPEM: oldCA.issue(t, "ECDSA-P256", "backend").chainPEM}, oldCA.rootPEM)
	kept(current)

	// CA rotation: first both roots everywhere, as pq-issuer publishes them, then new-CA leaves.
	time.Sleep(time.Second)
	c := oldCA.issue(t, "ECDSA-P256", "backend")
	rotate(clientVol, oldCA.issue(t, "ML-DSA-65", "api"), bothRoots)
	rotate(serverVol, c, bothRoots)
	presented(c.leaf)
	waitRoots(t, client, 2, bound)
	waitRoots(t, server, 2, bound)
	time.Sleep(2 * time.Second)
	c = newCA.issue(t, "ECDSA-P256", "backend")
	rotate(serverVol, c, bothRoots)
	t.Logf("new CA: server certificate presented after %s", presented(c.leaf))
	time.Sleep(2 * time.Second)
	rotate(clientVol, newCA.issue(t, "ML-DSA-87", "api"), bothRoots)
	time.Sleep(2 * time.Second)
	c = newCA.issue(t, "ECDSA-P256", "backend")
	rotate(clientVol, newCA.issue(t, "ML-DSA-65", "api"), newCA.rootPEM)
	rotate(serverVol, c, newCA.rootPEM)
	t.Logf("old root removed: server certificate presented after %s", presented(c.leaf))
	waitRoots(t, client, 1, bound)

	n := <-done
	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 0 {
		t.Errorf("%d of %d handshakes failed; first: %v", len(failures), n, failures[0])
	}
	select {
	case err := <-serverErrs:
		t.Errorf("the server failed a handshake: %v", err)
	default:
	}
	t.Logf("%d connections, no failed handshake", n)
}

func waitRoots(t *testing.T, s *Source, n int, bound time.Duration) {
	t.Helper()
	for start := time.Now(); time.Since(start) < bound; time.Sleep(10 * time.Millisecond) {
		if len(s.roots.Load().bundle.X509Authorities()) == n {
			return
		}
	}
	t.Fatalf("the trust bundle did not reach %d roots within %s", n, bound)
}
