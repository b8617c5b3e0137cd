// Package snapshot stores a container's file system as a new image in an
// image store: the pipeline behind a Driver's Snapshot.
//
// [Take] runs the steps of one snapshot, each with its undo registered
// before it runs:
//
//  1. pausing: a running container is paused explicitly (the engine's own
//     pause-on-commit is off, so the pause is visible and undone by us);
//  2. committing: the container is committed under a private, random
//     reference in [CommitRepository]; the container is unpaused right
//     after the commit, whatever the commit did;
//  3. uploading: the committed image is saved by that exact reference (so
//     exactly one image is exported) and the save stream is the body of
//     the store's Create: no temporary file, memory independent of the
//     image size. The save is requested as soon as the commit is there,
//     so that the unpause and the store's image record are made while
//     the engine prepares the save (which sends nothing until it has
//     staged the whole image);
//  4. done: the committed image is removed from the engine (the removal
//     starts as soon as the save stream has ended, while the store
//     finishes the upload), and the stored metadata is returned.
//
// The store image carries what an OpenStack user expects to find in
// Glance: container_format docker, disk_format raw, and the properties
// [PropImageType] ("snapshot"), [PropInstanceUUID], [PropBaseImageRef] and
// [PropEngineImageID], with the caller's own properties. The display name
// is any string the store accepts: engine reference rules never apply to
// it. The store records size and sha256.
//
// # Failures
//
// A failed snapshot leaves no store image (its deletion is retried while
// the store is unreachable, up to the cleanup timeout), no committed image
// on the engine, and the container in the state it had (unpaused if it
// ran). The error is an *[Error] naming the phase; it wraps the cause, so
// that errors.Is works with the engine's and the store's error classes and
// with context errors.
//
// # Crashes
//
// A process killed in the middle of Take cannot roll back. A caller that
// must clean up after one sets the request's Tag and ImageID and records
// them (with whether the container ran, hence was paused) before Take
// begins: after a crash, it unpauses the container, removes
// CommitRepository:Tag from the engine and deletes ImageID from the store
// (the docker backend keeps them in the instance's intent journal).
//
// [List] and [DeleteAll] find an instance's snapshots in a store by
// [PropInstanceUUID].
package snapshot
