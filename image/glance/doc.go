// Package glance is an [image.Store] backed by the OpenStack Image service
// (Glance v2), through gophercloud.
//
// Use [New] with a service client of a keystone-authenticated cloud (built
// the ordinary way with openstack.AuthenticatedClient and
// openstack.NewImageV2), or [NewNoAuth] with the endpoint of a Glance that
// runs without keystone (paste flavor empty, every request is admin).
//
// # Images
//
// Create makes an image with container_format "docker", disk_format "raw"
// and the caller's properties, uploads the data with a single streamed PUT
// /v2/images/{id}/file (chunked, 1 MiB per chunk: glance-api spends less
// CPU on large chunks), and stores the data's sha256 as the property
// "dockervisor_sha256" (see [WithSHA256Property]), so [image.Metadata]
// SHA256 is filled for Glance images too. It checks that Glance stored as
// many bytes as were sent; the content is checked when the image is read
// (Open verifies Glance's own checksums and our sha256), so the upload
// computes no hash besides the sha256 it records: on a machine where
// glance-api's ingest is CPU-bound, every hash the sending side adds is
// upload time. If anything fails — the source reader, the upload, the
// size, the context — it deletes the half-created image.
//
// Open downloads as a stream and verifies, at EOF, the size, Glance's md5
// checksum, its os_hash_value (sha512) and our sha256: a mismatch returns
// an error wrapping [image.ErrChecksumMismatch] instead of io.EOF. Nothing
// is buffered or written to temporary files. Open refuses images whose
// container_format is not "docker" ([image.ErrUnsupportedFormat]) and
// images without data: a queued (never uploaded) image returns
// [image.ErrNotFound], one that is still being uploaded or is deactivated
// returns [image.ErrUnavailable].
//
// # Errors
//
// Glance's HTTP errors are classified with gophercloud.ResponseCodeIs:
// 404 → [image.ErrNotFound], 409 → [image.ErrAlreadyExists], 400 →
// [image.ErrInvalidArgument], 5xx and connection failures →
// [image.ErrUnavailable]. The gophercloud error, with Glance's message,
// stays in the chain. Context errors stay errors.Is-able.
//
// # Concurrency
//
// A Store is safe for concurrent use; it holds no state besides the
// service client.
package glance
