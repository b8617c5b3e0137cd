package configdrive

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// cloudInitView is what testdata/read_config_drive.py prints: the config
// drive as cloud-init's own ConfigDrive reader sees it.
type cloudInitView struct {
	Version       int               `json:"version"`
	UserData      []byte            `json:"userdata"` // base64 in JSON
	UUID          string            `json:"uuid"`
	InstanceID    string            `json:"instance_id"`
	LocalHostname string            `json:"local_hostname"`
	Name          string            `json:"name"`
	Meta          map[string]string `json:"meta"`
	AdminPass     string            `json:"admin_pass"`
	RandomSeedLen int               `json:"random_seed_len"`
	Keys          []string          `json:"keys"`
	Files         map[string][]byte `json:"files"`
	VendorData    map[string]any    `json:"vendordata"`
	NetworkData   NetworkData       `json:"networkdata"`
	EC2           map[string]any    `json:"ec2_metadata"`
	NetworkConfig map[string]any    `json:"network_config"`
}

// testMACs names the NICs of testVIFs for cloud-init.
var testMACs = map[string]string{"fa:16:3e:11:22:33": "eth0", "fa:16:3e:44:55:66": "eth1", "fa:16:3e:77:88:99": "eth2"}

// readWithCloudInit runs cloud-init's reader on dir. macs maps MAC
// addresses to guest interface names for cloud-init's network conversion.
func readWithCloudInit(t *testing.T, dir string, macs map[string]string) cloudInitView {
	t.Helper()
	py := testenv.MustHaveCloudInit(t)
	script, err := filepath.Abs("testdata/read_config_drive.py")
	require.NoError(t, err)
	m, err := json.Marshal(macs)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), py, script, dir, string(m))
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("cloud-init reader failed: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var v cloudInitView
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	return v
}

// TestCloudInitReadsTree builds the tree of an instance with every field
// set, writes it, and checks that cloud-init's own ConfigDrive reader
// returns the same user-data, keys, metadata, files, vendor and network
// data, and converts the network data.
func TestCloudInitReadsTree(t *testing.T) {
	in := fullInstance(t)
	tree, err := Build(in)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "config_drive")
	require.NoError(t, Write(dir, tree))

	v := readWithCloudInit(t, dir, testMACs)
	assert.Equal(t, 2, v.Version, "config drive v2")
	assert.Equal(t, in.UserData, v.UserData)
	assert.Equal(t, in.UUID, v.UUID)
	assert.Equal(t, in.UUID, v.InstanceID, "cloud-init's instance-id")
	assert.Equal(t, in.Hostname+".novalocal", v.LocalHostname, "with Nova's dhcp_domain")
	assert.Equal(t, in.Name, v.Name)
	assert.Equal(t, in.Meta, v.Meta)
	assert.Equal(t, in.AdminPass, v.AdminPass)
	assert.Equal(t, RandomSeedBytes, v.RandomSeedLen, "random_seed decodes")
	assert.ElementsMatch(t, []string{in.Keys[0].Data, in.Keys[1].Data}, v.Keys)
	assert.Equal(t, map[string][]byte{"/etc/motd": []byte("welcome\n"), "/opt/app/config.bin": {0, 1, 2, 255}}, v.Files)
	assert.Equal(t, in.VendorData, v.VendorData)
	assert.Equal(t, BuildNetworkData(in.VIFs), v.NetworkData)
	assert.Equal(t, EC2InstanceID(in.UUID), v.EC2["instance-id"])
	assert.Equal(t, "10.0.0.5", v.EC2["local-ipv4"])
	assert.Equal(t, "203.0.113.9", v.EC2["public-ipv4"])

	// cloud-init turns network_data.json into its network config v1:
	// both NICs by MAC with their static subnets, and the DNS server.
	b, err := json.Marshal(v.NetworkConfig)
	require.NoError(t, err)
	var nc struct {
		Version int `json:"version"`
		Config  []struct {
			Type       string `json:"type"`
			Name       string `json:"name"`
			MACAddress string `json:"mac_address"`
			MTU        any    `json:"mtu"`
			Subnets    []struct {
				Type    string `json:"type"`
				Address string `json:"address"`
				Netmask string `json:"netmask"`
				Routes  []struct {
					Network string `json:"network"`
					Gateway string `json:"gateway"`
				} `json:"routes"`
			} `json:"subnets"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(b, &nc), "%s", b)
	assert.Equal(t, 1, nc.Version)
	var phys, dns int
	for _, c := range nc.Config {
		switch c.Type {
		case "physical":
			phys++
			if c.Name == "eth0" {
				assert.Equal(t, "fa:16:3e:11:22:33", c.MACAddress)
				assert.EqualValues(t, 1450, c.MTU)
				require.Len(t, c.Subnets, 2, "%s", b)
				assert.Equal(t, "static", c.Subnets[0].Type)
				assert.Equal(t, "10.0.0.5", c.Subnets[0].Address)
				assert.Equal(t, "255.255.255.0", c.Subnets[0].Netmask)
				assert.Len(t, c.Subnets[0].Routes, 2)
				assert.Equal(t, "static6", c.Subnets[1].Type)
			}
			if c.Name == "eth2" {
				assert.Nil(t, c.MTU, "the DHCP server gives the MTU")
				require.Len(t, c.Subnets, 2, "%s", b)
				assert.Equal(t, "dhcp4", c.Subnets[0].Type)
				assert.Equal(t, "ipv6_slaac", c.Subnets[1].Type)
			}
		case "nameserver":
			dns++
		}
	}
	assert.Equal(t, 3, phys, "%s", b)
	assert.Equal(t, 3, dns, "%s", b)

	// After a rewrite with new metadata, cloud-init reads the new values.
	in.Meta = map[string]string{"role": "db"}
	in.UserData = []byte("#!/bin/sh\necho v2\n")
	tree, err = Build(in)
	require.NoError(t, err)
	require.NoError(t, Write(dir, tree))
	v = readWithCloudInit(t, dir, testMACs)
	assert.Equal(t, map[string]string{"role": "db"}, v.Meta)
	assert.Equal(t, in.UserData, v.UserData)
}

// TestCloudInitMinimal: a tree with no user-data, keys, files or VIFs is
// still a valid config drive for cloud-init.
func TestCloudInitMinimal(t *testing.T) {
	tree, err := Build(Instance{UUID: "inst-1", Hostname: "h1"})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, Write(dir, tree))
	v := readWithCloudInit(t, dir, nil)
	assert.Equal(t, "inst-1", v.InstanceID)
	assert.Empty(t, v.UserData)
	assert.Empty(t, v.Keys)
}
