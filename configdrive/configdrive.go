package configdrive

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/network"
)

// SeedDir is where cloud-init's ConfigDrive datasource looks for a config
// drive tree before it looks for a block device labelled config-2.
const SeedDir = "/var/lib/cloud/seed/config_drive"

// MaxUserDataBytes is the largest user-data accepted, after base64
// decoding: Nova's limit of 64 KiB.
const MaxUserDataBytes = 64 << 10

// RandomSeedBytes is the size of meta_data.json's random_seed, as in Nova.
const RandomSeedBytes = 512

// Errors of the package, tested with [errors.Is]. Each is an
// [errclass.ErrInvalidArgument].
var (
	// ErrUserDataTooLarge means the user-data exceeds MaxUserDataBytes.
	ErrUserDataTooLarge = errclass.New("configdrive: user-data too large", errclass.ErrInvalidArgument)
	// ErrInvalidPath means a file to inject has a path that is not
	// absolute, escapes the guest root, or points into /proc, /sys or /dev.
	ErrInvalidPath = errclass.New("configdrive: invalid file path", errclass.ErrInvalidArgument)
	// ErrInvalidKey means an SSH public key does not parse, or two keys
	// share a name.
	ErrInvalidKey = errclass.New("configdrive: invalid SSH public key", errclass.ErrInvalidArgument)
	// ErrInvalidInstance means another field of the Instance is unusable
	// (an empty ID, say).
	ErrInvalidInstance = errclass.New("configdrive: invalid instance", errclass.ErrInvalidArgument)
	// ErrInvalidOption means an Option's value is unusable.
	ErrInvalidOption = errclass.New("configdrive: invalid option", errclass.ErrInvalidArgument)
)

// Key is an SSH public key (a Nova keypair).
type Key struct {
	// Name names the key; empty means "key-N" by position (from 0).
	Name string `json:"name,omitempty"`
	// Data is the public key in authorized_keys format ("ssh-ed25519
	// AAAA... comment").
	Data string `json:"data"`
}

// File is a file to inject into the guest (a Nova personality file).
type File struct {
	// Path is the absolute path in the guest.
	Path string `json:"path"`
	// Content is the file's content.
	Content []byte `json:"content"`
}

// Instance is what a config drive says about an instance.
type Instance struct {
	// UUID is the instance's ID (meta_data.json "uuid", cloud-init's
	// instance-id). Required.
	UUID string `json:"uuid"`
	// Name is the display name; empty means Hostname.
	Name string `json:"name,omitempty"`
	// Hostname is the guest's host name. Required.
	Hostname string `json:"hostname"`
	// Meta is the instance metadata (meta_data.json "meta").
	Meta map[string]string `json:"meta,omitempty"`
	// UserData is the user-data, decoded, at most MaxUserDataBytes.
	UserData []byte `json:"user_data,omitempty"`
	// Keys are SSH public keys (meta_data.json "public_keys" and "keys";
	// the first also in the EC2 tree).
	Keys []Key `json:"keys,omitempty"`
	// AdminPass is the admin password (meta_data.json "admin_pass"),
	// omitted when empty.
	AdminPass string `json:"admin_pass,omitempty"`
	// Files are injected through openstack/content and meta_data.json
	// "files".
	Files []File `json:"files,omitempty"`
	// VIFs give network_data.json and the EC2 local-ipv4 and public-ipv4
	// (the first fixed IPv4 address and the first floating IP).
	VIFs []network.VIF `json:"vifs,omitempty"`
	// AvailabilityZone, ProjectID, Flavor and LaunchIndex fill the
	// fields Nova writes; empty values are written as null or "".
	AvailabilityZone string `json:"availability_zone,omitempty"`
	ProjectID        string `json:"project_id,omitempty"`
	Flavor           string `json:"flavor,omitempty"`
	LaunchIndex      int    `json:"launch_index,omitempty"`
	// SecurityGroups are the names of the security groups of the
	// instance's ports, port by port, as Nova lists them (EC2
	// security-groups).
	SecurityGroups []string `json:"security_groups,omitempty"`
	// RootDeviceName is the instance's root device (EC2
	// block-device-mapping "root", and "ami" without /dev/); empty means
	// [DefaultRootDeviceName].
	RootDeviceName string `json:"root_device_name,omitempty"`
	// VendorData is written as vendor_data.json (and under "static" in
	// vendor_data2.json); nil means an empty object.
	VendorData map[string]any `json:"vendor_data,omitempty"`
	// RandomSeed is meta_data.json's random_seed; nil means
	// RandomSeedBytes fresh random bytes on every Build.
	RandomSeed []byte `json:"-"`
}

// DefaultRootDeviceName is the root device Nova's compute manager gives
// an instance whose driver names none (nova-docker's): the first of
// /dev/sd*.
const DefaultRootDeviceName = "/dev/sda"

// ValidateUserData checks the size of decoded user-data.
func ValidateUserData(b []byte) error {
	if len(b) > MaxUserDataBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrUserDataTooLarge, len(b), MaxUserDataBytes)
	}
	return nil
}

// forbiddenRoots are the guest trees a file may not be injected into: the
// kernel's, not the image's.
var forbiddenRoots = []string{"/proc", "/sys", "/dev"}

// ValidatePath checks the guest path of a file to inject: absolute, clean
// of ".." elements, not the root, not in /proc, /sys or /dev.
func ValidatePath(p string) error {
	switch {
	case p == "" || !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w: %q is not absolute", ErrInvalidPath, p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%w: %q holds a NUL byte", ErrInvalidPath, p)
	case len(p) > 4096:
		return fmt.Errorf("%w: path longer than 4096 bytes", ErrInvalidPath)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%w: %q escapes the guest root", ErrInvalidPath, p)
		}
	}
	c := path.Clean(p)
	if c == "/" || strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w: %q names a directory", ErrInvalidPath, p)
	}
	for _, root := range forbiddenRoots {
		if c == root || strings.HasPrefix(c, root+"/") {
			return fmt.Errorf("%w: %q is in %s", ErrInvalidPath, p, root)
		}
	}
	return nil
}

// ParseKey parses one public key in authorized_keys format and returns it
// normalised to "type base64 [comment]".
func ParseKey(data string) (string, error) {
	pk, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(data))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return "", fmt.Errorf("%w: more than one key in one entry", ErrInvalidKey)
	}
	out := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
	if comment != "" {
		out += " " + comment
	}
	return out, nil
}

// ValidateKeys checks every key and that names are unique.
func ValidateKeys(keys []Key) error {
	seen := map[string]bool{}
	for i, k := range keys {
		if _, err := ParseKey(k.Data); err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		name := keyName(k, i)
		if seen[name] {
			return fmt.Errorf("%w: duplicate key name %q", ErrInvalidKey, name)
		}
		if strings.ContainsAny(name, "\x00\n") {
			return fmt.Errorf("%w: key name %q", ErrInvalidKey, name)
		}
		seen[name] = true
	}
	return nil
}

// ValidateFiles checks every file's path and that no path repeats.
func ValidateFiles(files []File) error {
	seen := map[string]bool{}
	for _, f := range files {
		if err := ValidatePath(f.Path); err != nil {
			return err
		}
		if seen[path.Clean(f.Path)] {
			return fmt.Errorf("%w: %q given twice", ErrInvalidPath, f.Path)
		}
		seen[path.Clean(f.Path)] = true
	}
	return nil
}

func keyName(k Key, i int) string {
	if k.Name != "" {
		return k.Name
	}
	return fmt.Sprintf("key-%d", i)
}

// Validate checks the instance as Build does.
func (in Instance) Validate() error {
	if in.UUID == "" || strings.ContainsAny(in.UUID, "/\x00") {
		return fmt.Errorf("%w: bad UUID %q", ErrInvalidInstance, in.UUID)
	}
	if in.Hostname == "" {
		return fmt.Errorf("%w: empty host name", ErrInvalidInstance)
	}
	if err := ValidateUserData(in.UserData); err != nil {
		return err
	}
	if err := ValidateKeys(in.Keys); err != nil {
		return err
	}
	if err := ValidateFiles(in.Files); err != nil {
		return err
	}
	if err := network.ValidateVIFs(in.VIFs); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInstance, err)
	}
	for _, g := range in.SecurityGroups {
		if g == "" {
			return fmt.Errorf("%w: empty security group name", ErrInvalidInstance)
		}
	}
	if d := in.RootDeviceName; d != "" && (!strings.HasPrefix(d, "/dev/") || len(d) == len("/dev/") || strings.ContainsAny(d, "\x00\n")) {
		return fmt.Errorf("%w: root device name %q is not a /dev/ path", ErrInvalidInstance, d)
	}
	return nil
}

// AuthorizedKeys returns the keys in authorized_keys format, one a line.
func (in Instance) AuthorizedKeys() []byte {
	var b strings.Builder
	for _, k := range in.Keys {
		norm, err := ParseKey(k.Data)
		if err != nil {
			continue // Validate rejects it
		}
		b.WriteString(norm)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Versions of the metadata formats, from nova/api/metadata/base.py: the
// EC2 versions and the OpenStack versions, oldest first. Each is written
// as a directory, and "latest" as well.
var (
	EC2Versions = []string{
		"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10",
		"2007-12-15", "2008-02-01", "2008-09-01", "2009-04-04",
	}
	OpenStackVersions = []string{
		osFolsom, osGrizzly, osHavana, osLiberty, osNewtonOne, osNewtonTwo,
		osOcata, osRocky, osVictoria, osEpoxy,
	}
)

// Latest is the version directory that always holds the newest format.
const Latest = "latest"

const (
	osFolsom    = "2012-08-10"
	osGrizzly   = "2013-04-04"
	osHavana    = "2013-10-17"
	osLiberty   = "2015-10-15"
	osNewtonOne = "2016-06-30"
	osNewtonTwo = "2016-10-06"
	osOcata     = "2017-02-22"
	osRocky     = "2018-08-27"
	osVictoria  = "2020-10-14"
	osEpoxy     = "2025-04-04"
)

// atLeast reports whether version v (or "latest") is at or after min in
// versions.
func atLeast(versions []string, v, min string) bool {
	if v == Latest {
		return true
	}
	return slices.Index(versions, v) >= slices.Index(versions, min)
}

// Tree is a built config drive: file contents by slash-separated path
// relative to the drive's root.
type Tree map[string][]byte

// Paths returns the tree's paths, sorted.
func (t Tree) Paths() []string { return slices.Sorted(maps.Keys(t)) }

// Build validates in and lays out its config drive as Nova's
// InstanceMetadata.metadata_for_config_drive does, with Nova's defaults
// for what Nova has configuration for (see [Option]). Every JSON file is
// written as Nova writes it, byte for byte (Python's json.dumps: members
// in Nova's order, ", " and ": " separators, non-ASCII escaped); the
// package doc lists where the content departs from Nova's.
func Build(in Instance, opts ...Option) (Tree, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	seed := in.RandomSeed
	if seed == nil {
		seed = make([]byte, RandomSeedBytes)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("configdrive: random seed: %w", err)
		}
	}
	t := Tree{}
	var net any = object{} // Nova writes {} for an empty network_info
	if len(in.VIFs) > 0 {
		net = BuildNetworkData(in.VIFs)
	}
	netJSON, err := pyJSON(net)
	if err != nil {
		return nil, err
	}
	vendor := in.VendorData
	if vendor == nil {
		vendor = map[string]any{}
	}
	vendorJSON, err := pyJSON(vendor)
	if err != nil {
		return nil, fmt.Errorf("%w: vendor data: %w", ErrInvalidInstance, err)
	}
	vendor2JSON, err := pyJSON(object{{"static", vendor}})
	if err != nil {
		return nil, err
	}

	// EC2 style metadata.
	for _, v := range append(slices.Clone(EC2Versions), Latest) {
		if slices.Contains(o.skipVersions, v) {
			continue
		}
		md, err := pyJSON(in.ec2MetaData(v, o))
		if err != nil {
			return nil, err
		}
		t["ec2/"+v+"/meta-data.json"] = md
		if in.UserData != nil {
			t["ec2/"+v+"/user-data"] = in.UserData
		}
	}
	// OpenStack style metadata.
	for _, v := range append(slices.Clone(OpenStackVersions), Latest) {
		md, err := pyJSON(in.openStackMetaData(v, seed, o))
		if err != nil {
			return nil, err
		}
		base := "openstack/" + v + "/"
		t[base+"meta_data.json"] = md
		if in.UserData != nil {
			t[base+"user_data"] = in.UserData
		}
		if atLeast(OpenStackVersions, v, osHavana) {
			t[base+"vendor_data.json"] = vendorJSON
		}
		if atLeast(OpenStackVersions, v, osLiberty) {
			t[base+"network_data.json"] = netJSON
		}
		if atLeast(OpenStackVersions, v, osNewtonTwo) {
			t[base+"vendor_data2.json"] = vendor2JSON
		}
	}
	for i, f := range in.Files {
		t[contentPath(i)] = f.Content
	}
	return t, nil
}

// contentPath is where the i-th injected file goes, relative to the root.
func contentPath(i int) string { return fmt.Sprintf("openstack/content/%04d", i) }

// nullable writes an empty string as JSON null, as Nova writes None.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (in Instance) displayName() string {
	if in.Name != "" {
		return in.Name
	}
	return in.Hostname
}

// hostname is the host name Nova writes: Hostname with the DHCP domain
// appended (_get_hostname), unless Hostname is already a fully qualified
// name (Nova's host names never hold a dot).
func (in Instance) hostname(o *options) string {
	if o.dhcpDomain == "" || strings.Contains(in.Hostname, ".") {
		return in.Hostname
	}
	return in.Hostname + "." + o.dhcpDomain
}

// openStackMetaData is meta_data.json of version v, with the members
// Nova's _metadata_as_json writes for it, in its order.
func (in Instance) openStackMetaData(v string, seed []byte, o *options) object {
	md := object{{"uuid", in.UUID}}
	if len(in.Meta) > 0 {
		md.add("meta", in.Meta)
	}
	if len(in.Files) > 0 {
		refs := make([]object, len(in.Files))
		for i, f := range in.Files {
			refs[i] = object{{"path", f.Path}, {"content_path", "/" + strings.TrimPrefix(contentPath(i), "openstack/")}}
		}
		md.add("files", refs)
	}
	if in.AdminPass != "" {
		md.add("admin_pass", in.AdminPass)
	}
	if len(in.Keys) > 0 {
		pub := object{}
		keys := make([]object, 0, len(in.Keys))
		for i, k := range in.Keys {
			data, _ := ParseKey(k.Data)
			pub.add(keyName(k, i), data)
			keys = append(keys, object{{"name", keyName(k, i)}, {"type", "ssh"}, {"data", data}})
		}
		md.add("public_keys", pub)
		md.add("keys", keys)
	}
	md.add("hostname", in.hostname(o))
	md.add("name", in.displayName())
	md.add("launch_index", in.LaunchIndex)
	md.add("availability_zone", nullable(in.AvailabilityZone))
	if atLeast(OpenStackVersions, v, osGrizzly) {
		md.add("random_seed", base64.StdEncoding.EncodeToString(seed))
	}
	if atLeast(OpenStackVersions, v, osLiberty) {
		md.add("project_id", nullable(in.ProjectID))
	}
	if atLeast(OpenStackVersions, v, osNewtonOne) {
		md.add("devices", []any{})
	}
	if atLeast(OpenStackVersions, v, osVictoria) {
		md.add("dedicated_cpus", []int{})
	}
	return md
}

// EC2InstanceID returns the EC2-style ID ("i-" and 8 hex digits) derived
// from the instance's UUID: stable for the instance's life.
func EC2InstanceID(uuid string) string {
	h := sha256.Sum256([]byte(uuid))
	return fmt.Sprintf("i-%08x", binary.BigEndian.Uint32(h[:4]))
}

// ec2IPs returns the instance's first fixed IPv4 address and first
// floating IP, as Nova's get_ec2_ip_info orders them (VIF by VIF, subnet
// by subnet, fixed IP by fixed IP).
func (in Instance) ec2IPs() (fixed, floating netip.Addr) {
	for _, v := range in.VIFs {
		for _, s := range v.Subnets {
			for _, ip := range s.IPs {
				if ip.Is4() && !fixed.IsValid() {
					fixed = ip
				}
			}
			for _, f := range s.FloatingIPs {
				if !floating.IsValid() {
					floating = f.Address
				}
			}
		}
	}
	return fixed, floating
}

// blockDeviceMapping is Nova's instance_block_mapping of an instance with
// no block devices but its root.
func (in Instance) blockDeviceMapping() object {
	root := in.RootDeviceName
	if root == "" {
		root = DefaultRootDeviceName
	}
	return object{{"ami", strings.TrimPrefix(root, "/dev/")}, {"root", root}}
}

// ec2MetaData is ec2/<v>/meta-data.json, with the members Nova's
// get_ec2_metadata writes for version v, in its order.
func (in Instance) ec2MetaData(v string, o *options) object {
	ec2ID := EC2InstanceID(in.UUID)
	fixed, floating := in.ec2IPs()
	var localIPv4 any // Nova's fixed_ip or self.address: None on a config drive
	if fixed.IsValid() {
		localIPv4 = fixed.String()
	}
	publicIPv4 := ""
	if floating.IsValid() {
		publicIPv4 = floating.String()
	}
	groups := in.SecurityGroups
	if groups == nil {
		groups = []string{}
	}
	hostname := in.hostname(o)
	md := object{
		{"ami-id", "ami-00000000"},
		{"ami-launch-index", in.LaunchIndex},
		{"ami-manifest-path", "FIXME"},
		{"instance-id", ec2ID},
		{"hostname", hostname},
		{"local-ipv4", localIPv4},
		{"reservation-id", "r-" + ec2ID[2:]},
		{"security-groups", groups},
	}
	if len(in.Keys) > 0 {
		// Nova means to leave "_name" off a config drive, but its
		// metadata_for_config_drive looks for it at the wrong level, so
		// its drives have it.
		data, _ := ParseKey(in.Keys[0].Data)
		md.add("public-keys", object{{"0", object{{"_name", "0=" + keyName(in.Keys[0], 0)}, {"openssh-key", data}}}})
	}
	if atLeast(EC2Versions, v, "2007-01-19") {
		md.add("local-hostname", hostname)
		md.add("public-hostname", hostname)
		md.add("public-ipv4", publicIPv4)
	}
	if atLeast(EC2Versions, v, "2007-08-29") {
		md.add("instance-type", in.Flavor)
	}
	if atLeast(EC2Versions, v, "2007-12-15") {
		md.add("block-device-mapping", in.blockDeviceMapping())
	}
	if atLeast(EC2Versions, v, "2008-02-01") {
		md.add("placement", object{{"availability-zone", nullable(in.AvailabilityZone)}})
	}
	if atLeast(EC2Versions, v, "2008-09-01") {
		md.add("instance-action", "none")
	}
	return md
}
