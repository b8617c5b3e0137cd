// Package netnsdir creates and deletes named network namespaces (files
// under /run/netns bound to a namespace, as `ip netns` keeps them), with
// /run/netns made a shared mount point first, as `ip netns add` does.
//
// The mount point matters. `ip netns add` turns /run/netns into a mount
// point the first time it runs, with a recursive bind of the directory
// onto itself: a namespace file bound there before that is then bound
// twice, once on the new mount and once, hidden under it, on the old one.
// Deleting it unmounts the visible binding only, and removing the file
// fails with EBUSY for good (the namespace leaks). Making /run/netns a
// mount point before binding the first file avoids that, whoever runs
// `ip netns add` later.
package netnsdir
