package configdrive

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// Nova itself is the peer here: testdata/nova_config_drive.py builds a
// corpus of network_info samples with Nova's model classes and writes,
// for each, the config drive Nova writes (InstanceMetadata and its
// ConfigDriveBuilder, Debian's python3-nova); this package's parser and
// Build get the same network_info and instance, and every file must be
// Nova's, byte for byte, but where the package doc says the SDK departs
// from Nova. testdata/render_network.py then has cloud-init convert both
// network_data.json files and render netplan from them.

// runPython runs a testdata script with args, in on stdin, and decodes
// its output into out.
func runPython(t *testing.T, py, script string, in, out any, args ...string) {
	t.Helper()
	stdin, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), py, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	require.NoError(t, err, "%s: %s", script, stderr.String())
	require.NoError(t, json.Unmarshal(b, out), "%s", b)
}

// novaInstance is an instance as the Python side takes it.
type novaInstance struct {
	UUID             string            `json:"uuid"`
	Hostname         string            `json:"hostname"`
	DisplayName      string            `json:"display_name"`
	UserData         *string           `json:"user_data"` // base64
	Key              *Key              `json:"key"`
	AdminPass        string            `json:"admin_pass,omitempty"`
	Files            [][2]string       `json:"files,omitempty"` // path, base64 content
	Meta             map[string]string `json:"meta,omitempty"`
	AvailabilityZone *string           `json:"availability_zone"`
	ProjectID        *string           `json:"project_id"`
	Flavor           string            `json:"flavor"`
	LaunchIndex      int               `json:"launch_index"`
	VendorData       map[string]any    `json:"vendor_data"`
	RandomSeed       []byte            `json:"random_seed"`
	SecurityGroups   []string          `json:"security_groups"`
	RootDeviceName   string            `json:"root_device_name"`
	EC2InstanceID    string            `json:"ec2_instance_id"`
	ReservationID    string            `json:"reservation_id"`
	AMIID            string            `json:"ami_id"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// asNova describes in to Nova: the same values, and the EC2 IDs that
// Nova keeps in its database and the SDK derives from the UUID.
func asNova(in Instance) novaInstance {
	n := novaInstance{
		UUID: in.UUID, Hostname: in.Hostname, DisplayName: in.Name, AdminPass: in.AdminPass, Meta: in.Meta,
		AvailabilityZone: strPtr(in.AvailabilityZone), ProjectID: strPtr(in.ProjectID), Flavor: in.Flavor,
		LaunchIndex: in.LaunchIndex, VendorData: in.VendorData, RandomSeed: in.RandomSeed,
		SecurityGroups: in.SecurityGroups, RootDeviceName: in.RootDeviceName,
		EC2InstanceID: EC2InstanceID(in.UUID), AMIID: "ami-00000000",
	}
	n.ReservationID = "r-" + n.EC2InstanceID[2:]
	if n.DisplayName == "" {
		n.DisplayName = in.Hostname
	}
	if n.RootDeviceName == "" {
		n.RootDeviceName = DefaultRootDeviceName
	}
	if in.UserData != nil {
		n.UserData = strPtr(base64.StdEncoding.EncodeToString(in.UserData))
	}
	if len(in.Keys) > 0 {
		n.Key = &in.Keys[0]
	}
	for _, f := range in.Files {
		n.Files = append(n.Files, [2]string{f.Path, base64.StdEncoding.EncodeToString(f.Content)})
	}
	return n
}

type novaRun struct {
	Case     string            `json:"case"`
	Drop     []int             `json:"drop,omitempty"`
	Conf     map[string]string `json:"conf,omitempty"`
	Instance *novaInstance     `json:"instance,omitempty"`

	in   Instance
	opts []Option
}

type novaDrive struct {
	Tree        map[string][]byte `json:"tree"`
	NetworkData []byte            `json:"network_data"`
}

// departures says, by case, how the SDK's network_data.json departs from
// Nova 26's for that case on purpose (see the package doc); nil means
// not at all.
var departures = map[string]func(nd map[string]any){
	// Nova from 2024.1 (bug 2055245) writes a subnet whose meta has
	// enable_dhcp but no dhcp_server as DHCP; Debian's Nova 26 as static.
	"enable-dhcp-without-server": func(nd map[string]any) {
		n := nd["networks"].([]any)[0].(map[string]any)
		nd["networks"].([]any)[0] = map[string]any{"id": n["id"], "type": "ipv4_dhcp", "link": n["link"], "network_id": n["network_id"]}
	},
}

// skipped are the VIFs (by index) the parser leaves out of a case as
// malformed; Nova writes them as they are. Any other is a failure.
var skipped = map[string][]int{
	"malformed-vif":        {1}, // a fixed IP outside its subnet
	"nova-fixture-default": {0}, // Nova's fixture: fixed IPs outside a /32 subnet "255.255.255.255"
}

// TestNovaWritesTheSame: for every sample of the corpus, the SDK's config
// drive is Nova's: the same files, byte for byte; for a sample with a
// malformed VIF, Nova's for the sample without it.
func TestNovaWritesTheSame(t *testing.T) {
	py := testenv.MustHaveNova(t)
	var corpus struct {
		NovaVersion string `json:"nova_version"`
		Cases       []struct {
			Name        string `json:"name"`
			NetworkInfo string `json:"network_info"`
		} `json:"cases"`
	}
	runPython(t, py, "nova_config_drive.py", struct{}{}, &corpus, "corpus")
	pkg, _ := exec.CommandContext(t.Context(), "dpkg-query", "-W", "-f", "${Version}", "python3-nova").Output()
	t.Logf("Nova %s (python3-nova %s): %d network_info samples", corpus.NovaVersion, pkg, len(corpus.Cases))
	require.GreaterOrEqual(t, len(corpus.Cases), 25)

	base := fullInstance(t)
	base.Keys = base.Keys[:1] // a Nova instance has one key pair
	var runs []novaRun
	vifsOf := map[string][]network.VIF{}
	for _, c := range corpus.Cases {
		vifs, err := network.ParseNetworkInfo([]byte(c.NetworkInfo))
		var drop []int
		if err != nil {
			var nie *network.NetworkInfoError
			require.ErrorAs(t, err, &nie, c.Name)
			for _, s := range nie.Skipped {
				drop = append(drop, s.Index)
				assert.ErrorIs(t, s.Err, network.ErrInvalidVIF)
			}
		}
		assert.Equal(t, skipped[c.Name], drop, "%s: VIFs left out (%v)", c.Name, err)
		vifsOf[c.Name] = vifs
		in := base
		in.VIFs = vifs
		runs = append(runs, novaRun{Case: c.Name, Drop: drop, in: in})
	}
	// Nova's options, and an instance with nothing optional.
	withOpts := func(name string, conf map[string]string, opts ...Option) {
		in := base
		in.VIFs = vifsOf[name]
		runs = append(runs, novaRun{Case: name, Conf: conf, in: in, opts: opts})
	}
	withOpts("static-dual", map[string]string{"dhcp_domain": "example.org", "config_drive_skip_versions": ""},
		WithDHCPDomain("example.org"), WithConfigDriveSkipVersions())
	withOpts("dhcp-ipv4", map[string]string{"dhcp_domain": "", "config_drive_skip_versions": "1.0 2009-04-04"},
		WithDHCPDomain(""), WithConfigDriveSkipVersions("1.0", "2009-04-04"))
	bare := Instance{UUID: "5d1c9f7e-0000-4000-8000-00000000b0b0", Hostname: "bare", VIFs: vifsOf["several-vifs"],
		RandomSeed: bytes.Repeat([]byte{9}, RandomSeedBytes)}
	nb := asNova(bare)
	runs = append(runs, novaRun{Case: "several-vifs", Instance: &nb, in: bare})

	spec := struct {
		Instance    novaInstance      `json:"instance"`
		NetworkInfo map[string]string `json:"network_info"`
		Runs        []novaRun         `json:"runs"`
	}{asNova(base), map[string]string{}, runs}
	for _, c := range corpus.Cases {
		spec.NetworkInfo[c.Name] = c.NetworkInfo
	}
	var drives []novaDrive
	runPython(t, py, "nova_config_drive.py", spec, &drives, "drives")
	require.Len(t, drives, len(runs))

	files, identical := 0, 0
	var renders []renderItem
	for i, r := range runs {
		nova := drives[i]
		label := r.Case
		if r.Conf != nil || r.Instance != nil {
			label += " (variant)"
		}
		ours, err := Build(r.in, r.opts...)
		require.NoError(t, err, label)
		assert.Equal(t, slices.Sorted(maps.Keys(nova.Tree)), ours.Paths(), "%s: the same files", label)
		for p, want := range nova.Tree {
			got, ok := ours[p]
			if !ok {
				continue
			}
			files++
			if strings.HasSuffix(p, "network_data.json") && departures[r.Case] != nil {
				var nd map[string]any
				require.NoError(t, json.Unmarshal(want, &nd))
				departures[r.Case](nd)
				assert.JSONEq(t, mustJSON(t, nd), string(got), "%s: %s with the documented departure", label, p)
				continue
			}
			if bytes.Equal(want, got) {
				identical++
			} else {
				t.Errorf("%s: %s differs from Nova's:\n%s", label, p, firstDiff(want, got))
			}
		}
		// get_network_metadata itself (the metadata service's network_data.json).
		if got := ours["openstack/latest/network_data.json"]; len(r.in.VIFs) > 0 && departures[r.Case] == nil && !bytes.Equal(nova.NetworkData, got) {
			t.Errorf("%s: get_network_metadata differs:\n%s", label, firstDiff(nova.NetworkData, got))
		}
		if r.Conf == nil && r.Instance == nil {
			renders = append(renders, renderItem{Case: r.Case, Nova: nova.Tree["openstack/latest/network_data.json"], Ours: ours["openstack/latest/network_data.json"], MACs: macsOf(r.in.VIFs)})
		}
	}
	t.Logf("%d runs, %d files compared, %d byte for byte Nova's", len(runs), files, identical)

	checkRendered(t, renders)
}

type renderItem struct {
	Case       string
	Nova, Ours []byte
	MACs       map[string]string
}

// macsOf names the guest NICs of vifs by MAC, as the guest would see
// them: eth0, eth1... in order.
func macsOf(vifs []network.VIF) map[string]string {
	m := map[string]string{}
	for i, v := range vifs {
		if len(v.Address) > 0 {
			m[v.Address.String()] = "eth" + strconv.Itoa(i)
		}
	}
	return m
}

// checkRendered has cloud-init convert both network_data.json files of
// every case and render netplan from them: the same, case by case (for a
// case with a documented departure, where that departure shows).
func checkRendered(t *testing.T, items []renderItem) {
	t.Helper()
	py := testenv.MustHaveCloudInit(t)
	type in struct {
		NetworkData json.RawMessage   `json:"network_data"`
		MACs        map[string]string `json:"macs"`
	}
	var reqs []in
	for _, it := range items {
		reqs = append(reqs, in{it.Nova, it.MACs}, in{it.Ours, it.MACs})
	}
	var out []struct {
		V1      any    `json:"v1"`
		Netplan string `json:"netplan"`
		Error   string `json:"error"`
	}
	runPython(t, py, "render_network.py", reqs, &out)
	require.Len(t, out, len(reqs))
	same := 0
	for i, it := range items {
		nova, ours := out[2*i], out[2*i+1]
		if departures[it.Case] != nil {
			assert.Contains(t, nova.Netplan, "addresses:", "%s: Nova 26 renders a static address", it.Case)
			assert.Contains(t, ours.Netplan, "dhcp4: true", "%s: the SDK renders DHCP, as Nova 2024.1 does", it.Case)
			continue
		}
		if assert.Equal(t, nova.Error, ours.Error, "%s: cloud-init's error", it.Case) &&
			assert.Equal(t, nova.V1, ours.V1, "%s: cloud-init's network config", it.Case) &&
			assert.Equal(t, nova.Netplan, ours.Netplan, "%s: netplan", it.Case) {
			same++
		}
		if nova.Error != "" {
			t.Logf("%s: cloud-init refuses Nova's data and ours alike: %s", it.Case, nova.Error)
		}
	}
	t.Logf("cloud-init renders %d of %d cases identically", same, len(items))
	// The corpus reaches every kind of subnet cloud-init knows.
	all := ""
	for _, o := range out {
		all += o.Netplan
	}
	for _, want := range []string{"dhcp4: true", "dhcp6: true", "accept-ra: true", "addresses:", "mtu:"} {
		assert.Contains(t, all, want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// firstDiff shows where got first departs from want, with context.
func firstDiff(want, got []byte) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	from := max(0, i-80)
	return fmt.Sprintf("at byte %d:\n  Nova: …%s\n  ours: …%s", i, want[from:min(len(want), i+80)], got[from:min(len(got), i+80)])
}
