package stats

import "errors"

// Error classes of the stats package. Errors returned by this package wrap
// one of them (or an error of the operating system) and can be tested with
// errors.Is.
var (
	// ErrNamespaceGone means an instance's network namespace no longer
	// exists: its path is missing, its process died, or a bind mount of it
	// was removed.
	ErrNamespaceGone = errors.New("stats: network namespace no longer exists")
	// ErrMalformed means a kernel file or message could not be parsed.
	ErrMalformed = errors.New("stats: malformed kernel data")
)
