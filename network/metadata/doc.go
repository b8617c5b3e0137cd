// Package metadata is Nova's metadata service: the tree of an instance's
// config drive (package configdrive) served over HTTP at
// 169.254.169.254, where cloud-init's OpenStack datasource and other
// guest agents read it when an instance has no config drive.
//
// A [Service] holds the registered instances ([Service.Register] with
// the instance's boot data, a configdrive.Instance) and answers each
// request with the data of the instance it comes from, told apart as
// Neutron's metadata proxy tells Nova: by the network the request came
// through and its source address, which must be one of the instance's
// fixed IPs on that network (its VIF's NetworkID and subnet IPs). No
// instance can read another's data: a request from an address no
// registered instance has on that network gets 404 for every path but
// "/". As with Neutron, this rests on the source address: an instance
// that configures its own interface (an OS instance can) could take the
// address of one that is not on the network, unless its port has
// anti-spoofing (package network/secgroup: a filtered port sends from its
// own addresses only). Both are tested.
//
// The paths and answers are Nova's (nova/api/metadata/handler.py and
// base.py): "/" and "/openstack" list the EC2 and OpenStack versions,
// "/openstack/<version>" the files of that version,
// "/openstack/<version>/meta_data.json", "user_data",
// "network_data.json", "vendor_data.json", "vendor_data2.json" and
// "password" (an instance posts its encrypted password once, as
// cloudbase-init does), and the EC2 tree "/<version>/meta-data/...",
// "/<version>/user-data" with Nova's listings ("public-keys/" lists
// "0=<key name>"). What Nova's service leaves out, this service leaves
// out: injected files and the admin password reach an instance on its
// config drive only. Statuses are Nova's as well: 404 for an unknown
// version, file or key; any method reads a path (Nova's handler does not
// look at it), except the password, which takes GET and POST only (400
// otherwise), 409 for a second password and 400 for one over
// [MaxPasswordBytes]; and the 500 Nova's lookup ends in when a request
// names a key under a leaf of the EC2 tree.
//
// # Listening
//
// [Service.ListenNetns] answers on 169.254.169.254:80 inside a network
// namespace: a network's service namespace (package svcport), which has
// a port on the network, as Neutron's DHCP namespace does for its
// isolated metadata proxy. The instances need a route to 169.254.169.254
// through that port's address: a DHCP server pushes one (package dhcp,
// Config.MetadataRoute), or the subnet has it as a host route.
// [Service.Serve] answers on any listener, and [Service.Handler] is the
// plain http.Handler.
//
// # Other programs
//
// With [WithStateDir] the registrations outlive the program. A program
// that does not run the service registers instances through its control
// socket ([Service.ListenControl]) with a [Client], which has the
// Service's Register and Unregister: either can be given to the Docker
// backend (docker.WithMetadataService).
package metadata
