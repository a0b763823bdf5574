package main

// version is the release, stamped by `make release` with -ldflags "-X main.version=<VERSION>";
// empty in other builds.
var version string
