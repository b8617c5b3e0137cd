//go:build !unix

package docker

import "os"

// lockFile does nothing where there are no advisory locks: a compaction
// may then lose a line another process appends at the same instant.
func lockFile(*os.File, bool) error { return nil }

// unlockFile does nothing (see lockFile).
func unlockFile(*os.File) {}
