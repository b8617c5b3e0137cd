package kmod

import "golang.org/x/sys/unix"

// release is the running kernel's release (uname -r).
func release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
