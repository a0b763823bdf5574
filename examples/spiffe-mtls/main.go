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
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/pq-issuer/pq-issuer/workload"
)

func main() {
	dir := flag.String("dir", "/var/run/identity", "the mounted identity volume")
	bundle := flag.String("credential-bundle", "credentialbundle.pem", "the podCertificate credentialBundlePath in -dir; empty: a cert-manager Secret (tls.crt, tls.key, ca.crt)")
	trust := flag.String("trust-bundle", "trust-bundle.pem", "the clusterTrustBundle path in -dir")
	listen := flag.String("listen", "", "serve mutual TLS on this address")
	dial := flag.String("dial", "", "connect to this address with mutual TLS, print the reply and exit")
	peer := flag.String("peer", "", "the SPIFFE ID the peer must have")
	flag.Parse()
	if err := run(*dir, *bundle, *trust, *listen, *dial, *peer); err != nil {
		fmt.Fprintln(os.Stderr, "spiffe-mtls:", err)
		os.Exit(1)
	}
}

func run(dir, bundle, trust, listen, dial, peer string) error {
	peerID, err := spiffeid.FromString(peer)
	if err != nil {
		return fmt.Errorf("-peer %q: %w", peer, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	files := workload.Secret(dir)
	if bundle != "" {
		files = workload.PodCertificate(filepath.Join(dir, bundle), filepath.Join(dir, trust))
	}
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, args) }, funcr.Options{})
	src, err := workload.Open(ctx, files, workload.Options{Log: log})
	if err != nil {
		return err
	}
	switch {
	case listen != "" && dial == "":
		return serve(ctx, listen, tlsconfig.MTLSServerConfig(src, src, tlsconfig.AuthorizeID(peerID)))
	case dial != "" && listen == "":
		return call(dial, tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(peerID)))
	}
	return fmt.Errorf("give one of -listen and -dial")
}

// serve answers each client with its SPIFFE ID until ctx ends.
func serve(ctx context.Context, addr string, cfg *tls.Config) error {
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
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
				fmt.Fprintf(os.Stderr, "handshake with %s refused: %v\n", c.RemoteAddr(), err)
				return
			}
			id := tc.ConnectionState().PeerCertificates[0].URIs[0]
			fmt.Fprintf(tc, "hello %s, over %s\n", id, tls.VersionName(tc.ConnectionState().Version))
		}()
	}
}

// call dials addr and prints the server's reply.
func call(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	leaf := c.ConnectionState().PeerCertificates[0]
	fmt.Printf("server %s (certificate signed with %s) says: %s", leaf.URIs[0], leaf.SignatureAlgorithm, reply)
	return nil
}
