package main

import "runtime/debug"

// version is the release, stamped by `make release` with -ldflags "-X main.version=<VERSION>";
// empty in other builds.
var version string

// versionString is the stamped release or, in other builds, the module version and VCS revision
// the go command recorded.
func versionString() string {
	if version != "" {
		return version
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
