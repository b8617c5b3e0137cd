// Package osimage builds engine images that boot an operating system:
// a Debian root file system made with debootstrap from Debian's packages,
// with systemd as its init, cloud-init and openssh-server, imported into
// a Docker engine with /sbin/init as its command and the
// [hypervisor.OSImageLabel] label, so that the Docker backend spawns it
// as an OS instance.
//
// [Build] is cached by its inputs: the image's tag is a hash of the
// options that shape its content (suite, mirror, packages, the builder's
// own version), so a second Build with the same options finds the image
// on the engine and returns at once. Builds of the same image are
// serialised across processes with a lock file in the cache directory,
// which also holds debootstrap's package cache, so a rebuild downloads
// nothing it has downloaded before.
//
// Build needs root, debootstrap and chroot, and Debian's mirror (or a
// mirror given in the options). A first build takes a few minutes; the
// image is about 500 MB.
//
// # What the image holds
//
// Beyond the packages, the builder configures the image for a container:
// cloud-init reads the ConfigDrive datasource (the Docker backend mounts
// the config drive at /var/lib/cloud/seed/config_drive) or, for an
// instance without one, Nova's metadata service (the OpenStack
// datasource, which finds the instance an OpenStack one by the
// product_name the backend puts in PID 1's environment), keeps the host
// name the engine set, uses the C.UTF-8 locale (a minbase system has no
// locales package) and makes only the quick host key types. cloud-init
// renders the network configuration of network_data.json (static
// addresses, DHCP, SLAAC) and systemd-networkd, enabled, applies it, as
// on a VM: an instance on a DHCP subnet takes its lease with its own
// client. Before it renders, cloud-init waits until the VIFs the backend
// names in PID 1's DOCKERVISOR_VIFS exist (the backend attaches them
// just after the start). The journal is forwarded to the console, where
// systemd prints its boot and shutdown status, so that the instance's
// console output reads as a VM's serial console (with the services'
// output, such as the user-data's); /etc/machine-id is empty, so every
// instance gets its own.
package osimage
