// Package buildinfo says which build a binary is, for pq-issuer --version and kubectl pq version.
package buildinfo

import "runtime/debug"

// Version is stamped, the release `make release` stamps with -ldflags "-X main.version=<VERSION>",
// or, in other builds, the module version and VCS revision the go command recorded.
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}
