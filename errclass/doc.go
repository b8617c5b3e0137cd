// Package errclass holds the error classes of the whole module: one small
// set that every error of every package wraps exactly one of, so that a
// caller tests any error, from any layer, with [errors.Is] against one
// class: errors.Is(err, hypervisor.ErrNotFound) holds for a missing
// instance, a missing store image, an unknown Placement provider and a
// command missing inside an instance alike.
//
// Package hypervisor re-exports every class ([hypervisor.ErrNotFound] is
// [ErrNotFound]), so a program that drives a Driver needs no import of
// this package. Packages refine a class with sentinels of their own, made
// with [New]: image.ErrChecksumMismatch is an [ErrCorrupt],
// network.ErrDeviceConflict an [ErrInvalidArgument],
// hypervisor.ErrImageNotFound an [ErrNotFound]. A sentinel wraps exactly
// one class, by construction: New takes the class, and a test of the
// module enumerates every exported Err* variable of every package and
// checks that it matches one class and no other.
//
// [All] is the one table of classes: a classifier (the Docker backend
// giving an engine error its class, dvctl choosing an exit code) ranges
// over it, so adding a class is one edit here, and every table built on
// it has a test that fails until the new class has its row.
//
// # Why a package of our own, not containerd's errdefs
//
// containerd's github.com/containerd/errdefs (which the Docker backend
// uses to read the engine's errors) has sixteen classes modelled on gRPC
// codes; a caller of this SDK needs ten, and three of them
// ([ErrInvalidState], [ErrCorrupt], [ErrGuestFailed]) mean something
// specific here that errdefs spreads over several of its classes. The
// contract packages (hypervisor, image, network, stats) import nothing but
// the standard library and each other; a leaf package of the module keeps
// it so, and keeps third-party types out of the contract. The mapping
// from errdefs classes (an engine's errors) to ours lives in one place,
// the Docker backend's classifier.
package errclass
