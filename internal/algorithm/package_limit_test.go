package algorithm

import (
	"path/filepath"
	"strings"
	"testing"
)

// A small archive that unpacks beyond the limit is refused, and the error
// names the limit (issue #26, part 6): 3 MiB of zeros compress to a few KiB.
func TestUnpackRefusesBombBeyondTheLimit(t *testing.T) {
	src := tarGz(t, t.TempDir(), []tarEntry{{name: "manifest.json", body: `{"command": "sh"}`}, {name: "zeros", body: strings.Repeat("\x00", 3<<20)}})
	dst := filepath.Join(t.TempDir(), "p")
	err := UnpackFile(src, dst, PackageLimits{MaxBytes: 1 << 20})
	want := "unpack: package unpacks to more than 1048576 bytes (1 MiB), the limit for unpacked packages"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// The default is 2 GiB, down from a fixed 8 GiB; the node sets its own
// with --worker.max-package-bytes.
func TestDefaultUnpackedLimit(t *testing.T) {
	if DefaultMaxUnpackedBytes != 2<<30 || (PackageLimits{}).withDefaults().MaxBytes != DefaultMaxUnpackedBytes {
		t.Fatalf("default unpacked limit %d", (PackageLimits{}).withDefaults().MaxBytes)
	}
}
