// Package engine moves images between image stores and a Docker engine:
// [Load] streams a `docker save` tarball (from an [image.Reader]'s Open)
// into the engine and tags it deterministically, [Save] streams an engine
// image out as a tarball (for an [image.Writer]'s Create).
//
// # Load is all or nothing
//
// Load re-encodes the archive on the fly (a streaming tar copy, no
// temporary files, memory bounded by a small buffer and the manifest). It
// sets the archive's RepoTags to the caller's tag and drops the legacy
// "repositories" file, so loading never creates or moves any other tag
// (loaded display names cannot collide or leak). It holds manifest.json
// back until the source has been read to its end: only when the source
// ended cleanly (a store's checksum check passed), the archive was a valid
// docker-save archive and ctx is still live does the engine get the
// manifest and the end of the archive. Any earlier failure aborts the
// upload, and an engine never loads an archive without its manifest. After
// a failure in the engine's own steps, Load removes the tag it made (or
// puts back the image the tag named before).
//
// The tag comes from the store image ID through [TagFor], so the same
// store image always maps to the same engine reference.
//
// # Errors
//
// Archives that are not docker-save archives, or are corrupt or truncated,
// give errors wrapping [image.ErrUnsupportedFormat]. Errors of the source
// reader (such as [image.ErrChecksumMismatch]) and of ctx are returned
// wrapped as they are. Errors the engine reports in its load stream wrap
// [ErrLoadFailed]; a missing image is [image.ErrNotFound]; an unreachable
// engine is [image.ErrUnavailable].
package engine
