// Package image defines image stores: where `docker save` tarballs of
// instance images live (a local directory, OpenStack Glance, or memory), and
// the errors they return. Subpackages implement the stores:
//
//   - [github.com/dockervisor/dockervisor/image/localdir] keeps images in a
//     directory;
//   - [github.com/dockervisor/dockervisor/image/glance] keeps them in
//     OpenStack Glance;
//   - [github.com/dockervisor/dockervisor/image/imagetest] has an in-memory
//     store and the conformance suite every store passes;
//   - [github.com/dockervisor/dockervisor/image/engine] loads store images
//     into a Docker engine and saves engine images as streams.
//
// # Streams
//
// Stores stream: Create reads its data once, Open returns a stream, and no
// store buffers a whole image in memory or in a temporary file. Open
// verifies the recorded size and checksums while streaming: the final Read
// returns an error wrapping [ErrChecksumMismatch] instead of io.EOF when the
// data does not match, so a caller that reads to the end has verified it.
//
// # Idempotency
//
// Delete returns nil when the image does not exist. Create with an ID that
// exists returns [ErrAlreadyExists]; a failed Create leaves nothing behind.
//
// # Errors
//
// Stores return errors that wrap one of the classes [ErrNotFound],
// [ErrAlreadyExists], [ErrInvalidArgument], [ErrUnsupportedFormat],
// [ErrChecksumMismatch] or [ErrUnavailable], together with the cause from
// the backend, so test them with [errors.Is]. Context errors are returned
// wrapped, so errors.Is(err, context.Canceled) works.
//
// # Concurrency
//
// All stores are safe for concurrent use by several goroutines.
package image
