//go:build !unix

package localdir

// writing needs no lock where temporary files are not swept.
func (s *Store) writing() (unlock func(), err error) { return func() {}, nil }

// lockExclusive never succeeds where the system has no flock: temporary
// files of killed writers stay.
func (s *Store) lockExclusive() (release func(), ok bool) { return nil, false }
