package buildinfo

import "testing"

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name, stamped, want string
	}{
		{name: "stamped by make release", stamped: "0.1.0", want: "0.1.0"},
		// A test binary's build info has no VCS settings; go build in a checkout adds the revision.
		{name: "not stamped: the module version from the build info", stamped: "", want: "(devel)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Version(tc.stamped); got != tc.want {
				t.Errorf("Version(%q) = %q, want %q", tc.stamped, got, tc.want)
			}
		})
	}
}
