package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The harness below drives OpenSSL 3.5 through the pinned Node and the
// scripts in testdata, for the tests of this package and of other packages
// (test files cannot be imported). Only tests import this package, so it may
// take a testing.TB.

// nodeTimeout bounds every Node process; the whole batch of a test takes a
// few seconds.
const nodeTimeout = 60 * time.Second

// installTimeout covers npm downloading the Node package (tens of MB).
const installTimeout = 5 * time.Minute

type nodeInfo struct{ path, openssl string }

// node installs Node at most once per test binary.
var node = sync.OnceValues(func() (nodeInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	path, openssl, err := Node(ctx)
	return nodeInfo{path, openssl}, err
})

func nodeBinary(t testing.TB) string {
	t.Helper()
	n, err := node()
	if err != nil {
		t.Fatal(err)
	}
	return n.path
}

// NodeCreds are one TLS endpoint's files: its chain, key, and the CA it
// trusts for its peer.
type NodeCreds struct {
	Chain string `json:"chain"`
	Key   string `json:"key"`
	CA    string `json:"ca"`
}

// NodeCase is one entry of a batch.mjs manifest; Op selects which fields
// matter (see the ops in testdata/batch.mjs).
type NodeCase struct {
	Name       string     `json:"name"`
	Op         string     `json:"op"`
	Chain      string     `json:"chain,omitempty"`
	CA         string     `json:"ca,omitempty"`
	Server     *NodeCreds `json:"server,omitempty"`
	Client     *NodeCreds `json:"client,omitempty"`
	Servername string     `json:"servername,omitempty"`
	Message    string     `json:"message,omitempty"`
	Port       int        `json:"port,omitempty"`
	Type       string     `json:"type,omitempty"`
	Key        string     `json:"key,omitempty"`
	Pub        string     `json:"pub,omitempty"`
	Cert       string     `json:"cert,omitempty"`
	Data       []byte     `json:"data,omitempty"`
	Signature  []byte     `json:"signature,omitempty"`
}

// NodeError is a failure as Node reports it.
type NodeError struct {
	Message string `json:"message"`
	Code    string `json:"code"`
	// AuthorizationError is a Node server's verdict on the client chain.
	AuthorizationError string `json:"authorizationError"`
}

func (e *NodeError) String() string {
	if e == nil {
		return "no error"
	}
	return fmt.Sprintf("%s (code %q, authorizationError %q)", e.Message, e.Code, e.AuthorizationError)
}

// NodeResult is the union of what the batch.mjs ops report.
type NodeResult struct {
	Error *NodeError `json:"error"`
	// verify
	KeyType   string `json:"keyType"`
	CAKeyType string `json:"caKeyType"`
	Links     []struct {
		Subject     string `json:"subject"`
		CheckIssued bool   `json:"checkIssued"`
		Verify      bool   `json:"verify"`
	} `json:"links"`
	// mtls, connect
	Authorized   bool        `json:"authorized"`
	Protocol     string      `json:"protocol"`
	PeerCN       string      `json:"peerCN"`
	Reply        string      `json:"reply"`
	ServerErrors []NodeError `json:"serverErrors"`
	// sign, verifySignature
	Signature []byte `json:"signature"`
	SPKI      []byte `json:"spki"`
	OK        bool   `json:"ok"`
}

func (r NodeResult) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// RunBatch runs all cases in one batch.mjs process and returns the results
// by case name.
func RunBatch(t testing.TB, cases []NodeCase) map[string]NodeResult {
	t.Helper()
	manifest := writeManifest(t, map[string]any{"cases": cases})
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBinary(t), script(t, "batch.mjs"), manifest)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node batch.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	var out struct {
		Results map[string]NodeResult `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("node batch.mjs printed %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
	for _, c := range cases {
		if _, ok := out.Results[c.Name]; !ok {
			t.Fatalf("node batch.mjs reported nothing for case %q\nstderr:\n%s", c.Name, stderr.String())
		}
	}
	return out.Results
}

// StartServers runs serve.mjs: one Node mTLS server per entry, listening on
// 127.0.0.1 until stop is called. stop returns the handshakes each server
// rejected.
func StartServers(t testing.TB, servers map[string]NodeCreds) (ports map[string]int, stop func() map[string][]NodeError) {
	t.Helper()
	type entry struct {
		Name string `json:"name"`
		NodeCreds
	}
	var list []entry
	for name, c := range servers {
		list = append(list, entry{name, c})
	}
	manifest := writeManifest(t, map[string]any{"servers": list})
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	cmd := exec.CommandContext(ctx, nodeBinary(t), script(t, "serve.mjs"), manifest)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	// Whatever happens in the test, the servers die with it.
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
		cancel()
	})
	stdout := bufio.NewReader(stdoutPipe)
	var started struct {
		Ports map[string]int `json:"ports"`
	}
	line, err := stdout.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &started)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait() // stderr is complete only once the process is gone
		stopped = true
		t.Fatalf("node serve.mjs did not report its ports (%v): %q\nstderr:\n%s", err, line, stderr.String())
	}
	return started.Ports, func() map[string][]NodeError {
		t.Helper()
		stdin.Close() // serve.mjs reports and exits when stdin ends
		var finished struct {
			Errors map[string][]NodeError `json:"errors"`
		}
		line, err := stdout.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &finished)
		}
		waitErr := cmd.Wait()
		stopped = true
		if err != nil || waitErr != nil {
			t.Fatalf("node serve.mjs: %v, %v: %q\nstderr:\n%s", err, waitErr, line, stderr.String())
		}
		return finished.Errors
	}
}

// script returns the absolute path of a script in interop/testdata, from
// whichever package's directory the test runs in. Stat-ing it and lib.mjs,
// which it imports, tells go test's cache that results depend on them, as it
// cannot see what Node reads.
func script(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "interop", "testdata")
	for _, f := range []string{"lib.mjs", name} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, name)
}

func writeManifest(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
