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
//	ec2/<version>/meta-data.json          for every EC2 version and "latest"
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
package configdrive
