package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pq-issuer/pq-issuer/signer"
)

// maxInputSize bounds what any command reads: a Secret with a long chain is
// far smaller, and a mistaken path to a disk image should fail fast.
const maxInputSize = 4 << 20

// Standard file names, those of a kubernetes.io/tls Secret, so a directory
// maps onto a Secret one to one.
const (
	certFile = "tls.crt"
	keyFile  = "tls.key"
	csrFile  = "csr.pem"
)

// outFile is one file a command writes.
type outFile struct {
	name string
	data []byte
	mode fs.FileMode
}

// writeFiles writes files into dir all or nothing: each goes to a temporary
// file in dir, synced, and all are renamed into place only after every one
// was written. A file being replaced (force) is kept under a backup name
// until the end, so a rename that fails half-way puts back every file
// replaced so far: a failure never leaves a new certificate beside an old
// key, nor a half-written file. dir is created with mode 0700 (it holds
// private keys) if it does not exist, and removed again on failure.
// Existing files are refused unless force.
func writeFiles(dir string, force bool, files ...outFile) (err error) {
	if !force {
		for _, f := range files {
			p := filepath.Join(dir, f.name)
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s already exists; use --force to overwrite it", p)
			}
		}
	}
	created, err := mkdirIfMissing(dir)
	if err != nil {
		return err
	}
	if created {
		defer func() {
			if err != nil {
				os.Remove(dir)
			}
		}()
	}
	temps := make([]string, 0, len(files))
	defer func() {
		// After a successful install the temporaries have been renamed away.
		if err != nil {
			for _, t := range temps {
				os.Remove(t)
			}
		}
	}()
	for _, f := range files {
		t, err := writeTemp(dir, f)
		if err != nil {
			return err
		}
		temps = append(temps, t)
	}
	if err := install(dir, files, temps); err != nil {
		return err
	}
	// Best effort: some file systems refuse to sync a directory, and the
	// files are in place either way; the sync only makes the renames
	// survive a power cut.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// installed is a file renamed into place, with the backup of the file it
// replaced ("" if there was none).
type installed struct{ path, backup string }

// install renames each temporary onto its file. An existing file is first
// hard-linked to a backup name, so it stays in place until the rename
// replaces it; where the file system has no hard links it is renamed aside
// instead. If any rename fails, every file done so far is put back.
func install(dir string, files []outFile, temps []string) error {
	var done []installed
	for i, f := range files {
		p := filepath.Join(dir, f.name)
		backup := ""
		if info, err := os.Lstat(p); err == nil {
			if info.IsDir() {
				return rollback(done, fmt.Errorf("writing %s: it is a directory; remove it or choose another --out-dir", p))
			}
			backup = temps[i] + ".old"
			if err := os.Link(p, backup); err != nil {
				if err := os.Rename(p, backup); err != nil {
					return rollback(done, fmt.Errorf("writing %s: keeping the previous file: %w", p, err))
				}
			}
		}
		done = append(done, installed{p, backup})
		if err := os.Rename(temps[i], p); err != nil {
			return rollback(done, fmt.Errorf("writing %s: %w", p, err))
		}
	}
	for _, d := range done {
		if d.backup != "" {
			os.Remove(d.backup)
		}
	}
	return nil
}

// rollback undoes install, newest first, and returns cause with any file
// it could not put back and where that file's previous content is.
func rollback(done []installed, cause error) error {
	errs := []error{cause}
	for i := len(done) - 1; i >= 0; i-- {
		d := done[i]
		if d.backup == "" {
			os.Remove(d.path)
			continue
		}
		// With a hard-linked backup whose rename had not happened yet,
		// backup and path are one file: this rename is a no-op and the
		// Remove drops the extra link.
		if err := os.Rename(d.backup, d.path); err != nil {
			errs = append(errs, fmt.Errorf("could not put back the previous %s (it is kept as %s): %w", d.path, d.backup, err))
			continue
		}
		os.Remove(d.backup)
	}
	return errors.Join(errs...)
}

func mkdirIfMissing(dir string) (bool, error) {
	info, err := os.Stat(dir)
	switch {
	case err == nil && info.IsDir():
		return false, nil
	case err == nil:
		return false, fmt.Errorf("--out-dir %s is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("creating --out-dir: %w", err)
	}
	return true, nil
}

func writeTemp(dir string, f outFile) (string, error) {
	t, err := os.CreateTemp(dir, "."+f.name+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", filepath.Join(dir, f.name), err)
	}
	// Chmod before writing, so a private key is never readable by others.
	err = t.Chmod(f.mode)
	if err == nil {
		_, err = t.Write(f.data)
	}
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(t.Name())
		return "", fmt.Errorf("writing %s: %w", filepath.Join(dir, f.name), err)
	}
	return t.Name(), nil
}

// readInput reads path, or standard input for "-", up to maxInputSize.
func (c *cli) readInput(path string) ([]byte, error) {
	var r io.Reader = c.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxInputSize {
		return nil, fmt.Errorf("%s is larger than %d bytes; it is not a certificate, CSR, key or Secret", path, maxInputSize)
	}
	return data, nil
}

// loadCADir loads the CA in dir (tls.crt and tls.key) with the signer's
// checks, so the CLI accepts exactly the CAs the controller accepts. It also
// returns the files as read.
func (c *cli) loadCADir(dir string) (ca *signer.CA, certPEM, keyPEM []byte, err error) {
	certPEM, err = c.readInput(filepath.Join(dir, certFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	keyPEM, err = c.readInput(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the CA key: %w", err)
	}
	ca, err = signer.LoadCA(certPEM, keyPEM, c.now())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("loading the CA from %s: %w", dir, err)
	}
	return ca, certPEM, keyPEM, nil
}

// formatTime is how every command shows a time.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
