package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// binaries are the programs envtest runs from Options.BinDir.
func binaries() []string { return []string{"etcd", "kube-apiserver", "kubectl"} }

// checkBinaries fails with the command that builds the binaries when any is missing, rather than
// letting envtest fail later with a bare "file not found".
func checkBinaries(dir string) error {
	if dir == "" {
		return fmt.Errorf("no directory for kube-apiserver, etcd and kubectl given: build them with `make tools` and pass the bin/ directory")
	}
	var missing []string
	for _, name := range binaries() {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not found in %s: run `make tools` in the repository root to build them", strings.Join(missing, ", "), dir)
	}
	return nil
}
