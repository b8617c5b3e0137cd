// Package atomicfile writes files so that readers see the old content or
// the new, never a part: the data goes to a temporary file in the target's
// directory, which is synced, closed and then renamed (or hard-linked) onto
// the target, and the directory is synced after.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a temporary file that becomes its target on [File.Rename] or
// [File.Link]. Write to it like an *os.File. [File.Remove] discards it and
// is safe to defer: after a successful commit it does nothing.
type File struct {
	*os.File
	sync   bool
	closed bool
	gone   bool // committed by rename, or removed
}

// Create makes a new temporary file with mode perm, named prefix+random, in
// dir, where the target must live (a rename cannot cross file systems).
// With sync, the data is fsynced before the commit and the directory after
// it.
func Create(dir, prefix string, perm fs.FileMode, sync bool) (*File, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand)
	f, err := os.OpenFile(filepath.Join(dir, prefix+hex.EncodeToString(rnd[:])), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	return &File{File: f, sync: sync}, nil
}

// Close syncs (if asked to) and closes the temporary file, keeping it. It
// is idempotent; Rename and Link call it.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var serr error
	if f.sync {
		serr = f.File.Sync()
	}
	return errors.Join(serr, f.File.Close())
}

// Rename closes the file and renames it onto path, replacing what was
// there, then syncs the directory.
func (f *File) Rename(path string) error {
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	f.gone = true
	return f.syncDir(filepath.Dir(path))
}

// Link closes the file and hard-links it as path, failing with an error
// wrapping fs.ErrExist if path exists: a commit that never replaces. The
// temporary file stays until Remove.
func (f *File) Link(path string) error {
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		return err
	}
	return f.syncDir(filepath.Dir(path))
}

// Remove closes and deletes the temporary file. It does nothing after a
// successful Rename, and is idempotent.
func (f *File) Remove() {
	if f.gone {
		return
	}
	f.gone = true
	_ = f.Close()
	_ = os.Remove(f.Name())
}

func (f *File) syncDir(dir string) error {
	if !f.sync {
		return nil
	}
	return SyncDir(dir)
}

// WriteFile writes b to path atomically and durably: temporary file,
// fsync, rename, fsync of the directory. The file gets mode 0600.
func WriteFile(path string, b []byte) error {
	f, err := Create(filepath.Dir(path), "."+filepath.Base(path)+".tmp-", 0o600, true)
	if err != nil {
		return err
	}
	defer f.Remove()
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Rename(path)
}

// SyncDir fsyncs directory dir, making the renames and links in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
