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
// cloud-init reads only the ConfigDrive datasource (the Docker backend
// mounts the config drive at /var/lib/cloud/seed/config_drive), keeps the
// host name the engine set, uses the C.UTF-8 locale (a minbase system has
// no locales package), makes only the quick host key types and leaves
// the network configuration alone (the driver configures the instance's
// interfaces); the journal is forwarded to the console, where systemd
// prints its boot and shutdown status, so that the instance's console
// output reads as a VM's serial console (with the services' output, such
// as the user-data's);
// /etc/machine-id is empty, so every instance gets its own.
package osimage
