package nldump

import (
	"errors"
	"fmt"
)

// Retries is how many times in all a dump the kernel interrupted is made.
const Retries = 10

// Retry runs dump again while it fails with netlink.ErrDumpInterrupted, up
// to Retries times in all, and returns its last result. When every try was
// interrupted, the error says so and wraps netlink.ErrDumpInterrupted.
func Retry[T any](dump func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range Retries {
		v, err = dump()
		if errInterrupted == nil || !errors.Is(err, errInterrupted) {
			return v, err
		}
	}
	return v, fmt.Errorf("nldump: dump still interrupted after %d tries: %w", Retries, err)
}
