package hugemem

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPrefix is the file prefix of a group when none is given.
const DefaultPrefix = "gopmd"

// RuntimeDir returns the directory that holds a group's config, locks and
// sockets: /var/run/gopmd/<prefix> for root, $XDG_RUNTIME_DIR/gopmd/<prefix>
// or /tmp/gopmd-<uid>/<prefix> for other users.
func RuntimeDir(prefix string) string {
	if os.Geteuid() == 0 {
		return filepath.Join("/var/run/gopmd", prefix)
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		return filepath.Join(x, "gopmd", prefix)
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("gopmd-%d", os.Geteuid()), prefix)
}

// CheckPrefix reports whether prefix can name a group: it becomes part of
// file names, so it must be short and free of path separators.
func CheckPrefix(prefix string) error {
	switch {
	case prefix == "":
		return fmt.Errorf("file prefix is empty")
	case len(prefix) > 32:
		return fmt.Errorf("file prefix %q is %d bytes; at most 32 are allowed", prefix, len(prefix))
	case strings.ContainsAny(prefix, "/\x00") || prefix == "." || prefix == "..":
		return fmt.Errorf("file prefix %q must not contain '/' or NUL or be . or ..", prefix)
	}
	return nil
}
