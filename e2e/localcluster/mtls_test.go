package localcluster_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
)

// tlsServerEnv makes the test binary a one-connection Go mutual-TLS server: the value is the
// directory with the server's tls.crt, tls.key and ca.crt. It prints the address, then serves.
const tlsServerEnv = "PQ_E2E_TLS_SERVER"

// tlsServerMain is the server process: it requires a client certificate that chains to ca.crt,
// answers with what it saw of the client, and exits.
func tlsServerMain() int {
	dir := os.Getenv(tlsServerEnv)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, corev1.TLSCertKey), filepath.Join(dir, corev1.TLSPrivateKeyKey))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, cmmeta.TLSCAKey))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: clientCAs,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr())
	conn, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	tc := conn.(*tls.Conn)
	if err := tc.Handshake(); err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		return 1
	}
	peer := tc.ConnectionState().PeerCertificates[0]
	fmt.Fprintf(conn, "go server saw client %v signed with %s\n", peer.URIs, peer.SignatureAlgorithm)
	return 0
}

// startProcess starts cmd, killed when the test ends if it has not exited, and returns its stdout
// and what it writes to stderr.
func startProcess(t *testing.T, cmd *exec.Cmd) (*bufio.Reader, *strings.Builder) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return bufio.NewReader(stdout), stderr
}

// secretDir writes a kubernetes.io/tls Secret's tls.crt, tls.key and ca.crt to a directory.
func secretDir(t *testing.T, secret *corev1.Secret) string {
	t.Helper()
	dir := t.TempDir()
	for _, key := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, cmmeta.TLSCAKey} {
		writeTemp(t, dir, key, secret.Data[key])
	}
	return dir
}

// goMutualTLS runs a Go server process with server's Secret and handshakes with it from this
// process with client's Secret, both trusting only their own ca.crt. It returns the server's reply.
func goMutualTLS(t *testing.T, server, client *corev1.Secret, serverName string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), tlsServerEnv+"="+secretDir(t, server))
	out, stderr := startProcess(t, cmd)
	addr, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("Go TLS server process did not start: %v\n%s", err, stderr.String())
	}

	pair, err := tls.X509KeyPair(client.Data[corev1.TLSCertKey], client.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(client.Data[cmmeta.TLSCAKey])
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", strings.TrimSpace(addr), &tls.Config{
		Certificates: []tls.Certificate{pair}, RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS13,
	})
	if err != nil {
		t.Fatalf("Go client handshake with the Go server process failed: %v\nserver stderr: %s", err, stderr.String())
	}
	defer conn.Close()
	reply, err := io.ReadAll(conn)
	if err != nil || len(reply) == 0 {
		t.Fatalf("Reading the Go server's reply: %v (got %q)\nserver stderr: %s", err, reply, stderr.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("Go TLS server process failed: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(reply))
}

// nodeMutualTLS runs a Node 26 / OpenSSL 3.5 server process (interop/testdata/serve.mjs) with
// server's Secret and a second Node process as the client with client's Secret. It returns what
// the client saw of the exchange.
func nodeMutualTLS(t *testing.T, server, client *corev1.Secret, serverName string) (reply string) {
	t.Helper()
	node, testdata := nodeAndTestdata(t)
	creds := func(s *corev1.Secret) map[string]string {
		dir := secretDir(t, s)
		return map[string]string{"chain": filepath.Join(dir, corev1.TLSCertKey), "key": filepath.Join(dir, corev1.TLSPrivateKeyKey), "ca": filepath.Join(dir, cmmeta.TLSCAKey)}
	}
	srvCreds := creds(server)
	srvCreds["name"] = "server"
	data, err := json.Marshal(map[string]any{"servers": []any{srvCreds}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, filepath.Join(testdata, "serve.mjs"), writeTemp(t, t.TempDir(), "servers.json", data))
	stdin, err := cmd.StdinPipe() // serve.mjs serves until its stdin closes
	if err != nil {
		t.Fatal(err)
	}
	out, stderr := startProcess(t, cmd)
	var started struct {
		Ports map[string]int `json:"ports"`
	}
	line, err := out.ReadString('\n')
	if err != nil || json.Unmarshal([]byte(line), &started) != nil || started.Ports["server"] == 0 {
		t.Fatalf("Node TLS server process did not start: %v %q\n%s", err, line, stderr.String())
	}

	var result struct {
		Results map[string]struct {
			Authorized bool   `json:"authorized"`
			Protocol   string `json:"protocol"`
			Reply      string `json:"reply"`
			Error      any    `json:"error"`
		} `json:"results"`
	}
	nodeScript(t, "batch.mjs", map[string]any{"cases": []any{map[string]any{
		"name": "client", "op": "connect", "port": started.Ports["server"], "servername": serverName,
		"message": "hello from the e2e test", "client": creds(client),
	}}}, &result)
	_ = stdin.Close()
	rest, _ := io.ReadAll(out)
	_ = cmd.Wait()

	r := result.Results["client"]
	if r.Error != nil || !r.Authorized || r.Protocol != "TLSv1.3" || !strings.Contains(r.Reply, "authorized=true") {
		t.Fatalf("Node mutual TLS between two processes failed: client saw %+v; server reported %s\n%s", r, rest, stderr.String())
	}
	return strings.TrimSpace(r.Reply)
}
