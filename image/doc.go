// Package image defines image stores: where `docker save` tarballs of
// instance images live (a local directory, OpenStack Glance, or memory), and
// the errors they return. Subpackages implement the stores.
package image
