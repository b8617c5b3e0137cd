package lab

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/hypervisor"
)

// Errors of the package. Test with errors.Is.
var (
	// ErrInvalid means the lab file is malformed or inconsistent. It is a
	// hypervisor.ErrInvalidArgument.
	ErrInvalid = errclass.New("lab: invalid lab file", hypervisor.ErrInvalidArgument)
	// ErrNotFound means no lab of that name is known. It is a
	// hypervisor.ErrNotFound.
	ErrNotFound = errclass.New("lab: no such lab", hypervisor.ErrNotFound)
)

// Labels that Up puts on a lab's instances, so that a lab's instances can be
// found on the engine even without the state file.
const (
	LabelLab      = "dvctl-lab"
	LabelInstance = "dvctl-lab-instance"
	LabelSpec     = "dvctl-lab-spec" // hash of the instance's spec in the file
)

// File is a lab file.
type File struct {
	// Name names the lab; instance IDs are Name-<instance>.
	Name string `yaml:"name" json:"name"`
	// Instances by name.
	Instances map[string]Instance `yaml:"instances" json:"instances"`
	// Networks by name: Linux bridges or Open vSwitch bridges in the lab's
	// host namespace.
	Networks map[string]Network `yaml:"networks" json:"networks,omitempty"`
	// SecurityGroups by name: their rules, enforced on the ports that
	// name them.
	SecurityGroups map[string][]Rule `yaml:"security_groups" json:"security_groups,omitempty"`
	// External is the lab's external network: a namespace of its own that
	// routes the networks with a gateway and holds the floating IPs.
	External *External `yaml:"external" json:"external,omitempty"`
	// FloatingIPs are bound to instance ports with 1:1 NAT in the
	// external namespace.
	FloatingIPs []FloatingIP `yaml:"floating_ips" json:"floating_ips,omitempty"`
}

// Network types.
const (
	NetworkBridge = "bridge" // a Linux bridge (the default)
	NetworkOVS    = "ovs"    // an Open vSwitch bridge of the lab's private switch, ports plugged hybrid
)

// Rule is a security group rule. Traffic no ingress rule of a port's groups
// admits is dropped, and so is egress no egress rule admits; replies of
// admitted connections are admitted both ways.
type Rule struct {
	// Direction is ingress (the default) or egress.
	Direction string `yaml:"direction" json:"direction,omitempty"`
	// EtherType is IPv4 (the default) or IPv6.
	EtherType string `yaml:"ethertype" json:"ethertype,omitempty"`
	// Protocol is icmp, tcp, udp, a protocol number, or empty for any.
	Protocol string `yaml:"protocol" json:"protocol,omitempty"`
	// Port is a destination port or range ("8080", "8000-8100") for tcp
	// and udp, an ICMP type for icmp; empty means every one.
	Port string `yaml:"port" json:"port,omitempty"`
	// Remote limits the rule to peers in this CIDR.
	Remote string `yaml:"remote" json:"remote,omitempty"`
	// RemoteGroup limits the rule to peers that are ports of this group.
	RemoteGroup string `yaml:"remote_group" json:"remote_group,omitempty"`
}

// External is the lab's external network.
type External struct {
	// CIDR is the external subnet (IPv4); the router holds its first
	// address, floating IPs come from the rest.
	CIDR string `yaml:"cidr" json:"cidr"`
}

// FloatingIP binds a floating IP to an instance's port.
type FloatingIP struct {
	IP       string `yaml:"ip" json:"ip"`
	Instance string `yaml:"instance" json:"instance"`
	Port     int    `yaml:"port" json:"port,omitempty"` // the port's index: 0 for eth0
}

// Network is a lab network: a Linux bridge with one IPv4 or IPv6 subnet.
type Network struct {
	// CIDR is the subnet, such as 10.10.1.0/24.
	CIDR string `yaml:"cidr" json:"cidr"`
	// Gateway is the subnet's router; empty means none (no default route).
	Gateway string `yaml:"gateway" json:"gateway,omitempty"`
	// MTU of the network; 0 leaves the kernel's default.
	MTU int `yaml:"mtu" json:"mtu,omitempty"`
	// Type is bridge (the default) or ovs.
	Type string `yaml:"type" json:"type,omitempty"`
	// DHCP gives the network a DHCP server and Nova's metadata service,
	// as Neutron's DHCP agent does (enable_dhcp): a service namespace with
	// a port on the network holding DHCPServer, dnsmasq with a host entry
	// per port, and the metadata service at 169.254.169.254.
	DHCP bool `yaml:"dhcp" json:"dhcp,omitempty"`
	// DHCPServer is the DHCP port's address; empty means the subnet's
	// last host address.
	DHCPServer string `yaml:"dhcp_server" json:"dhcp_server,omitempty"`
	// IPv6Mode is an IPv6 network's address mode, as Neutron's
	// ipv6_address_mode and ipv6_ra_mode (the ports' subnet meta):
	// slaac, dhcpv6-stateful or dhcpv6-stateless; empty means none
	// (DHCPv6 for the fixed IPs, Neutron's default with dhcp). It needs
	// dhcp (the network's dnsmasq sends the router advertisements). On a
	// slaac or dhcpv6-stateless network a port's ip is the EUI-64
	// address of its MAC, as Neutron gives it; a port may leave ip out.
	IPv6Mode string `yaml:"ipv6_mode" json:"ipv6_mode,omitempty"`
}

// Port is an instance's interface on a lab network: eth0, eth1… in order.
type Port struct {
	Network string `yaml:"network" json:"network"`
	IP      string `yaml:"ip" json:"ip"`
	MAC     string `yaml:"mac" json:"mac,omitempty"` // default: derived from the lab, instance and port
	// SecurityGroups filter the port; none leaves it unfiltered.
	SecurityGroups []string `yaml:"security_groups" json:"security_groups,omitempty"`
}

// Flavor is an instance's size.
type Flavor struct {
	VCPUs  int   `yaml:"vcpus" json:"vcpus,omitempty"`
	Memory int64 `yaml:"memory" json:"memory,omitempty"` // MiB
}

// Instance is one instance of a lab.
type Instance struct {
	Image     string            `yaml:"image" json:"image"`
	Flavor    Flavor            `yaml:"flavor" json:"flavor,omitzero"`
	Command   []string          `yaml:"command" json:"command,omitempty"`
	Env       map[string]string `yaml:"env" json:"env,omitempty"`
	Metadata  map[string]string `yaml:"metadata" json:"metadata,omitempty"`
	DependsOn []string          `yaml:"depends_on" json:"depends_on,omitempty"`
	Ports     []Port            `yaml:"ports" json:"ports,omitempty"`
	// UserData is the instance's user-data and SSHKeys its public keys,
	// both on its config drive (configdrive.SeedDir in the instance).
	UserData string   `yaml:"user_data" json:"user_data,omitempty"`
	SSHKeys  []string `yaml:"ssh_keys" json:"ssh_keys,omitempty"`
	// Boot is app or os (the image's init as PID 1); empty lets the
	// image decide.
	Boot string `yaml:"boot" json:"boot,omitempty"`
	// ConfigDrive false leaves the instance without a config drive: it
	// reads its user-data, keys and metadata from the metadata service of
	// a network with dhcp, as on an OpenStack cloud without config drives.
	ConfigDrive *bool `yaml:"config_drive" json:"config_drive,omitempty"`
}

var (
	labName  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	hostName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Load reads and validates the lab file at path, after replacing each
// ${NAME} with the environment variable NAME, and each ${NAME:-DEFAULT} with
// it or, when it is unset or empty, DEFAULT (other $ signs stay as they are,
// so shell commands in the file keep theirs).
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var missing []string
	b = envRef.ReplaceAllFunc(b, func(m []byte) []byte {
		name, def, hasDef := strings.Cut(string(m[2:len(m)-1]), ":-")
		v, ok := os.LookupEnv(name)
		switch {
		case (!ok || v == "") && hasDef:
			v = def
		case !ok:
			missing = append(missing, name)
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s: unset environment variables %s", ErrInvalid, path, strings.Join(missing, ", "))
	}
	return Parse(bytes.NewReader(b))
}

var envRef = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`)

// Parse reads and validates a lab file. Unknown keys are errors, so a typo
// never passes silently.
func Parse(r io.Reader) (*File, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f.fillAutoAddresses()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks names, references and cycles.
func (f *File) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if !labName.MatchString(f.Name) {
		return bad("name %q: 1 to 32 lower-case letters, digits and '-'", f.Name)
	}
	if len(f.Instances) == 0 {
		return bad("no instances")
	}
	for _, name := range slices.Sorted(maps.Keys(f.Networks)) {
		if !hostName.MatchString(name) {
			return bad("network %q: lower-case letters, digits, '-'", name)
		}
		if _, err := f.subnet(name); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Networks)) {
		switch f.Networks[name].Type {
		case "", NetworkBridge, NetworkOVS:
		default:
			return bad("network %q: type %q: want bridge or ovs", name, f.Networks[name].Type)
		}
		if err := f.validateDHCP(name); err != nil {
			return err
		}
	}
	if _, err := f.groups(); err != nil {
		return err
	}
	for _, name := range f.InstanceNames() {
		in := f.Instances[name]
		if !hostName.MatchString(name) {
			return bad("instance %q: a host name (lower-case letters, digits, '-')", name)
		}
		if in.Image == "" {
			return bad("instance %q: no image", name)
		}
		for _, d := range in.DependsOn {
			if _, ok := f.Instances[d]; !ok {
				return bad("instance %q depends on %q, which is not in the lab", name, d)
			}
		}
		spec, err := f.spec(name)
		if err != nil {
			return err
		}
		if err := spec.Validate(); err != nil {
			return bad("instance %q: %w", name, err)
		}
		if spec.NoConfigDrive && !slices.ContainsFunc(in.Ports, func(p Port) bool { return f.Networks[p.Network].DHCP }) {
			return bad("instance %q has no config drive and no port on a network with dhcp, where its metadata service is", name)
		}
	}
	if _, err := f.Waves(); err != nil {
		return err
	}
	if _, err := f.filteredPorts(); err != nil {
		return err
	}
	if err := f.validateExternal(); err != nil {
		return err
	}
	return nil
}

// InstanceNames returns the instance names, sorted.
func (f *File) InstanceNames() []string {
	return slices.Sorted(maps.Keys(f.Instances))
}

// InstanceID returns the instance ID of the named instance.
func (f *File) InstanceID(name string) string { return f.Name + "-" + name }

// Waves returns the instance names in dependency order: each wave depends
// only on earlier waves, and the instances of one wave can be made in
// parallel. A dependency cycle is ErrInvalid.
func (f *File) Waves() ([][]string, error) {
	done := map[string]bool{}
	var waves [][]string
	for len(done) < len(f.Instances) {
		var wave []string
		for _, name := range f.InstanceNames() {
			if done[name] {
				continue
			}
			ready := true
			for _, d := range f.Instances[name].DependsOn {
				if !done[d] {
					ready = false
				}
			}
			if ready {
				wave = append(wave, name)
			}
		}
		if len(wave) == 0 {
			var left []string
			for _, name := range f.InstanceNames() {
				if !done[name] {
					left = append(left, name)
				}
			}
			return nil, fmt.Errorf("%w: dependency cycle among %s", ErrInvalid, strings.Join(left, ", "))
		}
		for _, n := range wave {
			done[n] = true
		}
		waves = append(waves, wave)
	}
	return waves, nil
}

// Spec returns the InstanceSpec the lab spawns for the named instance,
// labelled with the lab, the instance name and the hash of its spec, with a
// VIF per port. The file must have passed Validate.
func (f *File) Spec(name string) hypervisor.InstanceSpec {
	s, _ := f.spec(name)
	return s
}

func (f *File) spec(name string) (hypervisor.InstanceSpec, error) {
	in := f.Instances[name]
	vifs, err := f.vifs(name)
	if err != nil {
		return hypervisor.InstanceSpec{}, err
	}
	spec := hypervisor.InstanceSpec{
		ID:       f.InstanceID(name),
		Name:     name,
		Image:    in.Image,
		Command:  in.Command,
		Env:      in.Env,
		VCPUs:    in.Flavor.VCPUs,
		MemoryMB: in.Flavor.Memory,
		Metadata: in.Metadata,
		VIFs:     vifs,
		Boot:     hypervisor.BootMode(in.Boot),
	}
	spec.NoConfigDrive = in.ConfigDrive != nil && !*in.ConfigDrive
	if in.UserData != "" {
		spec.UserData = []byte(in.UserData)
	}
	for i, k := range in.SSHKeys {
		spec.SSHKeys = append(spec.SSHKeys, hypervisor.SSHKey{Name: fmt.Sprintf("key-%d", i), Data: k})
	}
	spec.Labels = map[string]string{LabelLab: f.Name, LabelInstance: name, LabelSpec: specHash(spec)}
	return spec, nil
}

// specHash is a short hash of what the spec says, to tell a changed instance
// from an unchanged one.
func specHash(s hypervisor.InstanceSpec) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(s) // maps encode in key order
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:8])
}
