// Package localdir is an [image.Store] that keeps images in a directory on
// the local file system.
//
// Each image is two files: <id>.tar holds the data (a `docker save`
// tarball) and <id>.json its [image.Metadata], including size and sha256.
// The metadata file is the commit point: an image exists once its metadata
// file exists.
//
// # Atomicity
//
// Create streams the data into a temporary file in the same directory
// (names starting with ".tmp-"), fsyncs it, links it to <id>.tar (which
// fails if that exists, so an existing image is never overwritten), then
// writes the metadata the same way and renames it into place, and fsyncs
// the directory. A failed or cancelled Create removes its temporary files
// and leaves no image behind. A Create whose process is killed leaves its
// temporary files, and maybe the data file without its metadata (no
// image): [New] removes such temporary files when no Create of any
// process runs (each holds a shared flock of the directory while it
// writes),
// and Delete of the ID removes the data file. Delete removes the metadata
// first, so the image disappears at once; readers that already opened it
// read on.
//
// # IDs
//
// IDs are 1 to 200 characters from [A-Za-z0-9._-] and start with a letter
// or digit, so no ID can name a file outside the directory or a temporary
// file. Other IDs are rejected with [image.ErrInvalidArgument].
//
// # Concurrency
//
// A Store is safe for concurrent use by several goroutines. Several
// processes may share a directory: creates of the same ID are decided by
// the file system (one wins, the others get [image.ErrAlreadyExists]), and
// Open verifies what it reads against the recorded sha256. OpenSeeker
// ([image.SeekOpener]) opens the data for random access, unverified, for
// callers that verify what they use by other means.
package localdir
