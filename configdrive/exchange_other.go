//go:build !linux

package configdrive

import "os"

// exchange swaps the directories a and b: b is moved aside and a moved in,
// so for a moment neither exists at b.
func exchange(a, b string) error {
	aside := a + ".old"
	if err := os.Rename(b, aside); err != nil {
		return err
	}
	if err := os.Rename(a, b); err != nil {
		_ = os.Rename(aside, b)
		return err
	}
	return os.Rename(aside, a)
}
