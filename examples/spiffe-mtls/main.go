// Command spiffe-mtls is a workload agent that serves or dials mutual TLS with the identity its
// pod mounts (a podCertificate volume, or a cert-manager Secret), authorizing the peer's SPIFFE
// ID, and follows rotations of the files without a restart.
//
//	spiffe-mtls -dir /var/run/identity -listen :8443 -peer spiffe://cluster.local/ns/shop/sa/api
//	spiffe-mtls -dir /var/run/identity -dial backend.shop.svc:8443 -peer spiffe://cluster.local/ns/shop/sa/backend
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/pq-issuer/pq-issuer/workload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "spiffe-mtls:", err)
		os.Exit(1)
	}
}

// run is the agent: what it saw of each peer goes to stdout, its log (the Source's, and the
// listening address) to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("spiffe-mtls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "/var/run/identity", "the mounted identity volume")
	bundle := fs.String("credential-bundle", "credentialbundle.pem", "the podCertificate credentialBundlePath in -dir; empty: a cert-manager Secret (tls.crt, tls.key, ca.crt)")
	trust := fs.String("trust-bundle", "trust-bundle.pem", "the clusterTrustBundle path in -dir")
	listen := fs.String("listen", "", "serve mutual TLS on this address")
	dial := fs.String("dial", "", "connect to this address with mutual TLS, print the reply and exit")
	peer := fs.String("peer", "", "the SPIFFE ID the peer must have")
	if err := fs.Parse(args); err != nil {
		return err
	}
	peerID, err := spiffeid.FromString(*peer)
	if err != nil {
		return fmt.Errorf("-peer %q: %w", *peer, err)
	}
	if (*listen == "") == (*dial == "") {
		return fmt.Errorf("give one of -listen and -dial")
	}
	files := workload.Secret(*dir)
	if *bundle != "" {
		files = workload.PodCertificate(filepath.Join(*dir, *bundle), filepath.Join(*dir, *trust))
	}
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(stderr, args) }, funcr.Options{})
	src, err := workload.Open(ctx, files, workload.Options{Log: log})
	if err != nil {
		return err
	}
	if *listen != "" {
		return serve(ctx, *listen, tlsconfig.MTLSServerConfig(src, src, tlsconfig.AuthorizeID(peerID)), stdout, stderr)
	}
	return call(*dial, tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(peerID)), stdout)
}

// serve answers each client with its SPIFFE ID until ctx ends.
func serve(ctx context.Context, addr string, cfg *tls.Config, stdout, stderr io.Writer) error {
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	fmt.Fprintf(stderr, "listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return ctx.Err()
		}
		go func() {
			defer c.Close()
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				fmt.Fprintf(stdout, "refused %s: %v\n", c.RemoteAddr(), err)
				return
			}
			state := tc.ConnectionState()
			fmt.Fprintf(stdout, "accepted %s\n", describe(state))
			fmt.Fprintf(tc, "hello %s, over %s\n", state.PeerCertificates[0].URIs[0], tls.VersionName(state.Version))
		}()
	}
}

// call dials addr and prints the server's reply.
func call(addr string, cfg *tls.Config, stdout io.Writer) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "connected to %s; it says: %s", describe(c.ConnectionState()), reply)
	return nil
}

// describe names the authorized peer as go-spiffe verified it: SPIFFE ID, leaf key, and the
// algorithm its CA signed with.
func describe(state tls.ConnectionState) string {
	leaf := state.PeerCertificates[0]
	return fmt.Sprintf("%s (%s key, certificate signed with %s, %s)", leaf.URIs[0], leaf.PublicKeyAlgorithm, leaf.SignatureAlgorithm, tls.VersionName(state.Version))
}
