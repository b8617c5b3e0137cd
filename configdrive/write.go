package configdrive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Top-level directories of a tree.
var topDirs = []string{"ec2", "openstack"}

// Write puts tree into dir, creating dir if needed, and replaces a tree a
// previous Write left there. Each top-level directory (ec2, openstack) is
// built aside and swapped in with one atomic rename exchange (on Linux),
// so a reader, such as a guest whose bind mount shows dir, sees either the
// old or the new directory, and a bind mount of dir itself stays valid.
// Directories are mode 0755, files 0644.
func Write(dir string, tree Tree) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("configdrive: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".new-")
	if err != nil {
		return fmt.Errorf("configdrive: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("configdrive: %w", err)
	}
	for _, d := range topDirs {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return fmt.Errorf("configdrive: %w", err)
		}
	}
	for _, p := range tree.Paths() {
		if !validTreePath(p) {
			return fmt.Errorf("%w: tree path %q", ErrInvalidPath, p)
		}
		full := filepath.Join(tmp, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("configdrive: %w", err)
		}
		if err := os.WriteFile(full, tree[p], 0o644); err != nil {
			return fmt.Errorf("configdrive: %w", err)
		}
	}
	for _, d := range topDirs {
		if err := swapIn(filepath.Join(tmp, d), filepath.Join(dir, d)); err != nil {
			return fmt.Errorf("configdrive: replace %s: %w", d, err)
		}
	}
	return nil
}

// validTreePath accepts relative paths under a top-level directory with no
// "." or ".." elements.
func validTreePath(p string) bool {
	parts := strings.Split(p, "/")
	if len(parts) < 2 {
		return false
	}
	ok := false
	for _, d := range topDirs {
		ok = ok || parts[0] == d
	}
	for _, el := range parts {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return ok
}

// swapIn moves the directory src to dst, replacing dst if it exists; the
// old content ends up at src (which the caller removes).
func swapIn(src, dst string) error {
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(src, dst)
	}
	return exchange(src, dst)
}
