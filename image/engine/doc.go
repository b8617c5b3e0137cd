// Package engine moves images between image stores and a Docker engine:
// [Load] streams a `docker save` tarball (from an [image.Reader]'s Open)
// into the engine and tags it deterministically, [LoadFrom] does the same
// for every archive format the engine can be fed from (docker-save, OCI
// image layout, both in one archive), and [Save] streams an engine image
// out as a tarball (for an [image.Writer]'s Create).
//
// # Archive formats
//
// The engine's image load (Docker 20.10, API 1.41) reads docker-save
// archives only. [LoadFrom] tells the formats apart by the first entries
// of the archive:
//   - docker-save (`docker save`, `skopeo copy … docker-archive:`): one
//     pass, re-encoded as described below.
//   - OCI image layout (`skopeo copy … oci-archive:`, `podman save
//     --format oci-archive`, and newer engines' `docker save`, which
//     carries both layouts): tools write the blobs first and index.json
//     last, so the archive is read twice. The first read sends nothing to
//     the engine: it keeps the entry list, oci-layout, index.json and the
//     small JSON blobs (manifests, indexes, config; at most 32 MiB), then
//     checks the layout version, picks the one image manifest for the
//     platform (through nested indexes), and checks the config, each
//     layer's media type, its presence, size and compression (read from
//     its first bytes: uncompressed and gzip tars load, zstd and others do
//     not). The second read streams only the picked config and layers,
//     verifying each blob's sha256 digest, under their layout paths,
//     followed by a manifest.json naming them: a docker-save archive made
//     on the fly, with no temporary file and memory independent of the
//     image size. [LoadOptions.Scan] may serve the first read without the
//     whole-archive checksum, and seek over the layers: nothing of that
//     read reaches the engine, and the second read verifies everything
//     the engine gets before it gets the end of the archive.
//
// The streaming read takes more than one core where there is one: the
// source (a file read and the store's checksum, or a download) is read
// ahead in a goroutine of its own, and each blob's digest is computed in
// another while the blob is written to the engine (a few fixed chunks of
// 256 KiB each).
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
// Archives that are not image archives, are corrupt or truncated, or hold
// what the engine cannot load (no image for the platform, zstd layers, a
// missing blob, an unknown layout version) give errors wrapping
// [image.ErrUnsupportedFormat]; for an OCI layout these come before any
// engine call, except a blob whose data does not match its digest, which
// the second read finds (the engine then never gets manifest.json). Errors of the source
// reader (such as [image.ErrChecksumMismatch]) and of ctx are returned
// wrapped as they are. Errors the engine reports in its load stream wrap
// [ErrLoadFailed]; a missing image is [image.ErrNotFound]; an unreachable
// engine is [image.ErrUnavailable].
package engine
