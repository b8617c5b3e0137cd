package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

const demo = `
name: demo
instances:
  web:
    image: img:1
    flavor: {vcpus: 2, memory: 64}
    depends_on: [db]
  db:
    image: img:1
  cache:
    image: img:1
    depends_on: [db]
`

func parse(t *testing.T, s string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(s))
	require.NoError(t, err)
	return f
}

func TestParseErrors(t *testing.T) {
	for name, s := range map[string]string{
		"bad name":     "name: Demo\ninstances: {a: {image: x}}",
		"no instances": "name: d",
		"unknown key":  "name: d\ninstances: {a: {image: x, flavour: {}}}",
		"no image":     "name: d\ninstances: {a: {}}",
		"missing dep":  "name: d\ninstances: {a: {image: x, depends_on: [b]}}",
		"cycle":        "name: d\ninstances: {a: {image: x, depends_on: [b]}, b: {image: x, depends_on: [a]}}",
		"bad cidr":     "name: d\nnetworks: {n: {cidr: 10.0.0.1/24}}\ninstances: {a: {image: x}}",
		"bad gateway":  "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, gateway: 10.1.0.1}}\ninstances: {a: {image: x}}",
		"no network":   "name: d\ninstances: {a: {image: x, ports: [{network: n, ip: 10.0.0.2}]}}",
		"ip outside":   "name: d\nnetworks: {n: {cidr: 10.0.0.0/24}}\ninstances: {a: {image: x, ports: [{network: n, ip: 10.9.0.2}]}}",
		"flavor":       "name: d\ninstances: {a: {image: x, flavor: {vcpus: 99999}}}",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(s))
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestWavesAndSpec(t *testing.T) {
	f := parse(t, demo)
	waves, err := f.Waves()
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"db"}, {"cache", "web"}}, waves)
	s := f.Spec("web")
	assert.Equal(t, "demo-web", s.ID)
	assert.Equal(t, "web", s.Name)
	assert.Equal(t, 2, s.VCPUs)
	assert.EqualValues(t, 64, s.MemoryMB)
	assert.Equal(t, "demo", s.Labels[LabelLab])
	assert.NotEqual(t, s.Labels[LabelSpec], f.Spec("db").Labels[LabelSpec])
}

func TestVIFs(t *testing.T) {
	f := parse(t, "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, gateway: 10.0.0.1, mtu: 1400}}\ninstances: {a: {image: x, ports: [{network: n, ip: 10.0.0.2}]}}")
	v := f.Spec("a").VIFs
	require.Len(t, v, 1)
	assert.Equal(t, f.BridgeName("n"), v[0].Bridge)
	assert.LessOrEqual(t, len(v[0].Bridge), 15)
	assert.Equal(t, "10.0.0.2", v[0].Subnets[0].IPs[0].String())
	assert.Equal(t, 1400, v[0].MTU)
	assert.Equal(t, v, f.Spec("a").VIFs, "deterministic")
	assert.True(t, strings.HasPrefix(v[0].Address.String(), "fa:16:3e:"))
}

func TestUpIsIdempotentAndDownRemovesAll(t *testing.T) {
	ctx := context.Background()
	drv := hypervisortest.NewFake(hypervisortest.WithImages("img:1"))
	opts := Options{StateDir: t.TempDir()}
	f := parse(t, demo)

	acts, err := Up(ctx, drv, f, opts)
	require.NoError(t, err)
	assert.Equal(t, []string{"created", "created", "created"}, actionsOf(acts))

	acts, err = Up(ctx, drv, f, opts)
	require.NoError(t, err)
	assert.Equal(t, []string{"unchanged", "unchanged", "unchanged"}, actionsOf(acts))

	// Repair: a stopped, a paused and a soft-deleted instance come back.
	require.NoError(t, drv.PowerOff(ctx, "demo-db", hypervisor.StopOptions{}))
	require.NoError(t, drv.Pause(ctx, "demo-web"))
	require.NoError(t, drv.SoftDelete(ctx, "demo-cache"))
	acts, err = Up(ctx, drv, f, opts)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"started", "unpaused", "restored"}, actionsOf(acts))

	// A changed spec is replaced; an instance gone from the file is removed.
	f2 := parse(t, strings.Replace(strings.Replace(demo, "memory: 64", "memory: 128", 1), "  cache:\n    image: img:1\n    depends_on: [db]\n", "", 1))
	acts, err = Up(ctx, drv, f2, opts)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"removed", "unchanged", "replaced"}, actionsOf(acts))
	info, err := drv.Info(ctx, "demo-web")
	require.NoError(t, err)
	assert.EqualValues(t, 128, info.MemoryMB)

	st, err := Status(ctx, drv, f)
	require.NoError(t, err)
	assert.Equal(t, "missing", st[0].State) // cache
	assert.True(t, st[2].Changed)           // web

	_, err = Down(ctx, drv, "demo", opts)
	require.NoError(t, err)
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
	names, err := ListStates(opts.StateDir)
	require.NoError(t, err)
	assert.Empty(t, names)
}

func TestHalfFailedUpIsCleanedByDown(t *testing.T) {
	ctx := context.Background()
	drv := hypervisortest.NewFake(hypervisortest.WithImages("img:1"))
	opts := Options{StateDir: t.TempDir()}
	f := parse(t, "name: half\ninstances:\n  a: {image: img:1}\n  b: {image: missing:1, depends_on: [a]}\n")
	_, err := Up(ctx, drv, f, opts)
	require.ErrorIs(t, err, hypervisor.ErrImageNotFound)
	st, found, err := LoadState(opts.StateDir, "half")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, []string{"half-a", "half-b"}, st.Instances)

	acts, err := Down(ctx, drv, "half", opts)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"destroyed", "absent"}, actionsOf(acts))
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestGraph(t *testing.T) {
	f := parse(t, "name: g\nnetworks: {n: {cidr: 10.0.0.0/24}}\ninstances:\n  a: {image: x, ports: [{network: n, ip: 10.0.0.2}]}\n  b: {image: x, depends_on: [a]}\n")
	var b bytes.Buffer
	require.NoError(t, f.Graph(&b, "dot"))
	assert.Contains(t, b.String(), `"i:a" -- "n:n" [label="eth0 10.0.0.2"];`)
	assert.Contains(t, b.String(), `"i:a" -- "i:b" [dir=forward`)
	b.Reset()
	require.NoError(t, f.Graph(&b, "mermaid"))
	assert.Contains(t, b.String(), `i_a ---|"eth0 10.0.0.2"| n_n`)
	assert.Contains(t, b.String(), `i_a -.->|after| i_b`)
	assert.True(t, errors.Is(f.Graph(&b, "png"), ErrInvalid))
}

func actionsOf(acts []Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, a.Action)
	}
	return out
}

func TestNetworkModel(t *testing.T) {
	f := parse(t, `name: m
networks:
  lan: {cidr: 10.0.0.0/24, gateway: 10.0.0.1}
  sw: {type: ovs, cidr: 10.0.1.0/24}
security_groups:
  web:
    - {protocol: icmp}
    - {protocol: tcp, port: 8000-8080, remote: 10.0.0.0/8}
    - {direction: egress, remote_group: web}
external: {cidr: 192.0.2.0/24}
floating_ips: [{ip: 192.0.2.10, instance: a}]
instances:
  a:
    image: x
    ports: [{network: lan, ip: 10.0.0.2, security_groups: [web]}, {network: sw, ip: 10.0.1.2}]
    user_data: "#cloud-config\n"
    ssh_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK4R0iA5VISp+zX+RPAL9qGldLrafLw3rdWNQB7eZoma k']
`)
	g, err := f.groups()
	require.NoError(t, err)
	require.Len(t, g, 1)
	require.Len(t, g[0].Rules, 3)
	assert.Equal(t, secgroup.Ingress, g[0].Rules[0].Direction)
	assert.Equal(t, secgroup.IPv4, g[0].Rules[0].EtherType)
	assert.Equal(t, 8000, *g[0].Rules[1].PortRangeMin)
	assert.Equal(t, 8080, *g[0].Rules[1].PortRangeMax)
	assert.Equal(t, "web", g[0].Rules[2].RemoteGroupID)

	ports, err := f.filteredPorts()
	require.NoError(t, err)
	require.Len(t, ports, 1, "only the port with groups is filtered")
	assert.Equal(t, f.BridgeName("lan"), ports[0].Bridge)

	spec := f.Spec("a")
	assert.Equal(t, network.VIFTypeOVS, spec.VIFs[1].Type)
	assert.True(t, spec.VIFs[1].HybridPlug)
	assert.Equal(t, f.OVSBridgeName("sw"), spec.VIFs[1].Bridge)
	assert.Equal(t, "#cloud-config\n", string(spec.UserData))
	assert.Equal(t, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK4R0iA5VISp+zX+RPAL9qGldLrafLw3rdWNQB7eZoma k", spec.SSHKeys[0].Data)
	assert.True(t, f.HasOVS())

	b, err := f.bindings()
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.10", b[0].Floating.String())
	assert.Equal(t, "10.0.0.2", b[0].Fixed.String())
	assert.Equal(t, []string{"lan"}, f.routedNetworks())
	r, p := f.routerLegs("lan")
	assert.LessOrEqual(t, len(r), 15)
	assert.LessOrEqual(t, len(p), 15)
}

func TestNetworkModelErrors(t *testing.T) {
	base := "name: e\nnetworks: {lan: {cidr: 10.0.0.0/24, gateway: 10.0.0.1}, sw: {type: ovs, cidr: 10.0.1.0/24}}\n"
	for name, tail := range map[string]string{
		"unknown key":       "instances: {a: {image: x}}\nnetworks2: 1\n",
		"unknown group":     "instances: {a: {image: x, ports: [{network: lan, ip: 10.0.0.2, security_groups: [nope]}]}}\n",
		"bad protocol":      "security_groups: {g: [{protocol: bogus}]}\ninstances: {a: {image: x}}\n",
		"bad port":          "security_groups: {g: [{protocol: tcp, port: eighty}]}\ninstances: {a: {image: x}}\n",
		"bad remote":        "security_groups: {g: [{remote: 10.0.0.1/8}]}\ninstances: {a: {image: x}}\n",
		"unknown remote":    "security_groups: {g: [{remote_group: h}]}\ninstances: {a: {image: x}}\n",
		"fip no external":   "floating_ips: [{ip: 192.0.2.10, instance: a}]\ninstances: {a: {image: x, ports: [{network: lan, ip: 10.0.0.2}]}}\n",
		"fip outside":       "external: {cidr: 192.0.2.0/24}\nfloating_ips: [{ip: 198.51.100.1, instance: a}]\ninstances: {a: {image: x, ports: [{network: lan, ip: 10.0.0.2}]}}\n",
		"fip router":        "external: {cidr: 192.0.2.0/24}\nfloating_ips: [{ip: 192.0.2.1, instance: a}]\ninstances: {a: {image: x, ports: [{network: lan, ip: 10.0.0.2}]}}\n",
		"fip no port":       "external: {cidr: 192.0.2.0/24}\nfloating_ips: [{ip: 192.0.2.10, instance: a, port: 1}]\ninstances: {a: {image: x, ports: [{network: lan, ip: 10.0.0.2}]}}\n",
		"fip ovs":           "external: {cidr: 192.0.2.0/24}\nfloating_ips: [{ip: 192.0.2.10, instance: a}]\ninstances: {a: {image: x, ports: [{network: sw, ip: 10.0.1.2}]}}\n",
		"fip twice":         "external: {cidr: 192.0.2.0/24}\nfloating_ips: [{ip: 192.0.2.10, instance: a}, {ip: 192.0.2.10, instance: a}]\ninstances: {a: {image: x, ports: [{network: lan, ip: 10.0.0.2}]}}\n",
		"external not ipv4": "external: {cidr: '2001:db8::/64'}\ninstances: {a: {image: x}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(base + tail))
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
	_, err := Parse(strings.NewReader("name: e\nnetworks: {n: {type: vxlan, cidr: 10.0.0.0/24}}\ninstances: {a: {image: x}}\n"))
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestLoadEnvDefault(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l.yaml")
	require.NoError(t, os.WriteFile(p, []byte("name: ${LABTEST_NAME:-dflt}\ninstances: {a: {image: '${LABTEST_IMG:-img:1}', command: [sh, -c, 'echo $HOME']}}\n"), 0o644))
	f, err := Load(p)
	require.NoError(t, err)
	assert.Equal(t, "dflt", f.Name)
	assert.Equal(t, "img:1", f.Instances["a"].Image)
	assert.Equal(t, []string{"sh", "-c", "echo $HOME"}, f.Instances["a"].Command)
	t.Setenv("LABTEST_NAME", "set")
	f, err = Load(p)
	require.NoError(t, err)
	assert.Equal(t, "set", f.Name)
}

// TestDHCPNetworks: a network with dhcp gives its ports' subnets the DHCP
// server's address (Nova's dhcp_server meta) and a host route to the
// metadata service through it; its service port and hosts come from the
// file; bad DHCP settings are errors.
func TestDHCPNetworks(t *testing.T) {
	f := parse(t, `
name: d
networks:
  n: {cidr: 10.0.0.0/24, gateway: 10.0.0.1, dhcp: true}
  s: {cidr: 10.1.0.0/24}
  o: {cidr: 10.2.0.0/24, type: ovs, dhcp: true, dhcp_server: 10.2.0.2}
instances:
  a: {image: x, config_drive: false, ports: [{network: n, ip: 10.0.0.5}, {network: s, ip: 10.1.0.5}]}
  b: {image: x, ports: [{network: o, ip: 10.2.0.6}]}
`)
	assert.Equal(t, []string{"n", "o"}, f.DHCPNetworks())
	spec := f.Spec("a")
	assert.True(t, spec.NoConfigDrive)
	assert.False(t, f.Spec("b").NoConfigDrive)
	sub := spec.VIFs[0].Subnets[0]
	assert.Equal(t, "10.0.0.254", sub.DHCPServer.String())
	require.Len(t, sub.Routes, 1)
	assert.Equal(t, "169.254.169.254/32", sub.Routes[0].Dest.String())
	assert.Equal(t, "10.0.0.254", sub.Routes[0].Gateway.String())
	assert.False(t, spec.VIFs[1].Subnets[0].DHCPServer.IsValid(), "a static network")
	assert.Empty(t, spec.VIFs[1].Subnets[0].Routes)
	assert.Equal(t, "10.2.0.2", f.Spec("b").VIFs[0].Subnets[0].DHCPServer.String())

	port, err := f.servicePort("o")
	require.NoError(t, err)
	assert.Equal(t, network.VIFTypeOVS, port.Type)
	assert.True(t, port.HybridPlug)
	assert.Equal(t, "10.2.0.2", port.Subnets[0].IPs[0].String())
	assert.Equal(t, "d/o", port.NetworkID)
	hosts, err := f.dhcpHosts("n")
	require.NoError(t, err)
	require.Len(t, hosts, 1)
	assert.Equal(t, spec.VIFs[0].Address.String(), hosts[0].MAC.String())
	assert.Equal(t, "dvlab-d-n", f.ServiceNetnsName("n"))
	var g bytes.Buffer
	require.NoError(t, f.Graph(&g, "dot"))
	assert.Contains(t, g.String(), `dhcp + metadata 10.0.0.254`)

	for name, s := range map[string]string{
		"server outside":      "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, dhcp: true, dhcp_server: 10.9.0.2}}\ninstances: {a: {image: x}}",
		"server is gateway":   "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, gateway: 10.0.0.254, dhcp: true}}\ninstances: {a: {image: x}}",
		"server is a port's":  "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, dhcp: true, dhcp_server: 10.0.0.5}}\ninstances: {a: {image: x, ports: [{network: n, ip: 10.0.0.5}]}}",
		"server without dhcp": "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, dhcp_server: 10.0.0.5}}\ninstances: {a: {image: x}}",
		"no drive, no dhcp":   "name: d\nnetworks: {n: {cidr: 10.0.0.0/24}}\ninstances: {a: {image: x, config_drive: false, ports: [{network: n, ip: 10.0.0.5}]}}",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(s))
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}
