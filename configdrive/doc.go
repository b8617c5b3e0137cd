// Package configdrive builds OpenStack config drives: the directory tree
// that Nova writes to a guest's config drive (config drive v2), read by
// cloud-init's ConfigDrive datasource and by other guest agents.
//
// [Build] turns an [Instance] (its ID, host name, metadata, user-data, SSH
// keys, admin password, files to inject and VIFs) into a [Tree] laid out as
// nova/api/metadata/base.py lays it out:
//
//	openstack/<version>/meta_data.json    for every Nova version and "latest"
//	openstack/<version>/user_data         when there is user-data
//	openstack/<version>/vendor_data.json  from 2013-10-17
//	openstack/<version>/network_data.json from 2015-10-15
//	openstack/<version>/vendor_data2.json from 2016-10-06
//	openstack/content/NNNN                injected files, named in meta_data.json
//	ec2/<version>/meta-data.json          for the EC2 versions not skipped, and "latest"
//	ec2/<version>/user-data               when there is user-data
//
// [Write] puts a tree into a directory and replaces a previous tree there
// in place, so that a bind mount of the directory (at [SeedDir] inside a
// container, where cloud-init finds a config drive without a block device)
// sees the new content without a remount.
//
// The package is independent of any hypervisor backend: a compute agent
// can use it for a metadata service or an ISO image as well. It builds on
// every OS.
//
// # Nova's formats
//
// Every file is the one Nova writes for the same instance, byte for byte:
// the JSON as Python's json.dumps writes it, with the members in Nova's
// order. The package's tests hold it to that against Nova itself
// (Debian's python3-nova: InstanceMetadata and its config drive writer)
// for a corpus of network_info samples built with Nova's own model
// classes, and have cloud-init render both alike. In network_data.json:
//
//   - a link per VIF with an IPv4 or IPv6 subnet, named by the VIF's
//     devname or "interfaceN", where N counts the VIFs with any subnet
//     (a [network.Subnet.Placeholder], Nova's subnet without a CIDR,
//     too); its type is [LinkType] ("phy" for "ethernet" and every type
//     Nova does not expose); its MTU null when a subnet of the VIF has a
//     DHCP server (the server gives it) or the network has none; its MAC
//     null when the VIF has none;
//   - a network for the first IPv4 and the first IPv6 subnet with fixed
//     IPs, of [NetworkType]: "ipv4"/"ipv6" (static: address, netmask,
//     default and host routes, DNS servers), "ipv6_slaac",
//     "ipv6_dhcpv6-stateful" or "ipv6_dhcpv6-stateless" (an IPv6 address
//     mode: the same members) or "ipv4_dhcp"/"ipv6_dhcp" (a DHCP server
//     or enable_dhcp in the subnet meta: id, type, link and network_id
//     only); network_id null when the network has none;
//   - the DNS servers of those subnets as services, each once;
//   - {} for an instance without VIFs.
//
// meta_data.json and the EC2 meta-data.json hold the host name with
// Nova's dhcp_domain ([WithDHCPDomain], "novalocal" by default); the EC2
// tree holds local-ipv4 (the first fixed IPv4 address, null without one),
// public-ipv4 (the first floating IP, [network.Subnet] FloatingIPs),
// security-groups ([Instance] SecurityGroups), block-device-mapping (the
// root device, "/dev/sda" by default, as Nova's compute manager names it
// for a driver that names none) and public-keys with "_name" (Nova means
// to leave it off a drive, but does not). Only the EC2 versions Nova's
// config_drive_skip_versions leaves are written
// ([WithConfigDriveSkipVersions]: every one but 2009-04-04 by default; a
// metadata service serves them all).
//
// # Where the SDK departs from Nova, and why
//
//   - A malformed VIF (an address outside its subnet, a bad MAC...) is not
//     written: [network.ParseNetworkInfo] leaves it out and reports it in
//     a [network.NetworkInfoError], and the drive is then Nova's for the
//     list without it. Nova writes such a VIF as it is (and numbers the
//     VIFs after it past it); the SDK cannot plug what it cannot read, and
//     a guest told of an interface it does not have would wait for it.
//   - A subnet whose meta has enable_dhcp but no dhcp_server (OVN's native
//     DHCP) is a DHCP network, as Nova writes it from 2024.1 (bug
//     2055245); Nova 26 (Debian 12's) writes it static.
//   - OpenStack version 2025-04-04 is written, as Nova writes it from
//     2025.1; older Novas stop at 2020-10-14. Its files are 2020-10-14's.
//   - A host name that is already fully qualified (it has a dot) is
//     written without the DHCP domain. Nova's host names never have one.
//   - Every SSH key is listed in public_keys and keys (the EC2 tree has
//     the first); a Nova instance has one key pair.
//   - The EC2 instance-id and reservation-id derive from the UUID
//     ([EC2InstanceID]) and ami-id is "ami-00000000": Nova takes them from
//     its database and the image's EC2 mapping, which an SDK has not.
//   - One random_seed serves every version of a drive; Nova draws one per
//     file.
//   - meta and vendor data are written with their keys sorted (Go maps);
//     Nova keeps the order of its database and of the vendor data file.
//     Vendor data numbers are written as Go writes them (1.0 as 1).
//   - A CIDR-less subnet that holds addresses is malformed: Nova writes no
//     network for it but counts its fixed IPs in local-ipv4.
//   - A route without a gateway is written with a null gateway, where Nova
//     fails; a dhcp_server of "" counts as none, where Nova types the
//     network DHCP but keeps the link MTU; nova-network's numeric network
//     IDs are written as strings.
//   - What needs Nova's services is not written: device tags (devices is
//     []), dedicated CPUs ([]), ephemeral, swap and volume mappings,
//     kernel-id and ramdisk-id, and the injected network template
//     (network_config, nova-network's).
//
// A backend may still configure the addresses of DHCP and SLAAC subnets
// inside an instance itself (an application container has no DHCP
// client): only the data on the drive follows Nova.
package configdrive
