package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
	"github.com/dockervisor/dockervisor/network/ovs"
	"github.com/dockervisor/dockervisor/network/ovs/ovsrun"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

// networkDemo gives instances networks: two on a Linux bridge and two on
// Open vSwitch (hybrid plug) ping each other, a security group admits one
// TCP port and drops another, and a floating IP makes an instance
// reachable from an "external" namespace. The host side lives in private
// network namespaces (one for the bridge, firewall and NAT, one for a
// private Open vSwitch), so the real host's network is never touched.
// Everything is removed at the end, also on failure.
func networkDemo(ctx context.Context, cli *client.Client, store image.Reader, imageID, stateDir string) (err error) {
	var undo []func() error
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			err = errors.Join(err, undo[i]())
		}
	}()
	bg := context.WithoutCancel(ctx)
	sfx := randomHex(3)
	hostNS, extNS := "dvlab-host-"+sfx, "dvlab-ext-"+sfx
	hostPath := "/run/netns/" + hostNS

	step("network: private host namespace %s (Linux bridge, firewall, NAT) and a private Open vSwitch", hostNS)
	if err := sh(ctx, "ip", "netns", "add", hostNS); err != nil {
		return err
	}
	undo = append(undo, func() error { return sh(bg, "ip", "netns", "delete", hostNS) })
	if err := sh(ctx, "ip", "-n", hostNS, "link", "set", "lo", "up"); err != nil {
		return err
	}
	dp, _ := ovsrun.PickDatapath(ctx) // the kernel datapath where there is one
	sw, err := ovsrun.Start(ctx, ovsrun.Options{NetNS: "dvlab-ovs-" + sfx, Datapath: dp})
	if err != nil {
		return err
	}
	undo = append(undo, func() error { return sw.Stop(bg) })
	const intBridge = "br-int"
	if err := sw.AddBridge(ctx, intBridge); err != nil {
		return err
	}

	lb, err := linuxbridge.New(linuxbridge.WithHostNetNS(hostPath))
	if err != nil {
		return err
	}
	undo = append(undo, lb.Close)
	ovsDrv, err := ovs.New(ovs.WithDB(sw.DB), ovs.WithHostNetNS(sw.NetNS), ovs.WithIntegrationBridge(intBridge))
	if err != nil {
		return err
	}
	vifs := network.NewDispatcher()
	vifs.Handle(network.VIFTypeBridge, lb)
	vifs.Handle(network.VIFTypeOVS, ovsDrv)

	// Security groups on the Linux-bridge ports (the firewall lives in the
	// bridge's namespace).
	fw, err := secgroup.New(secgroup.WithHostNetNS(hostPath))
	if err != nil {
		return err
	}
	undo = append(undo, func() error { return errors.Join(fw.Teardown(bg), fw.Close()) })
	port := func(p int) *int { return &p }
	icmp := []secgroup.Rule{
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "icmp"},
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv6, Protocol: "icmpv6"},
		{Direction: secgroup.Egress, EtherType: secgroup.IPv4},
		{Direction: secgroup.Egress, EtherType: secgroup.IPv6},
	}
	if err := fw.SetGroup(ctx, secgroup.Group{ID: "client", Rules: icmp}); err != nil {
		return err
	}
	if err := fw.SetGroup(ctx, secgroup.Group{ID: "web", Rules: append(icmp,
		secgroup.Rule{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "tcp", PortRangeMin: port(8080)})}); err != nil {
		return err
	}
	groupOf := map[string]string{}
	hook := secgroup.NewPortHook(fw, func(_ string, v network.VIF) ([]string, bool) {
		g, ok := groupOf[v.ID]
		return []string{g}, ok
	})

	drv, err := docker.New(
		docker.WithImageStore(store),
		docker.WithStateDir(filepath.Join(stateDir, "driver-net")),
		docker.WithLabelPrefix("io.dockervisor.labnet."),
		docker.WithNamePrefix("dockervisor-labnet-"),
		docker.WithStopTimeout(3*time.Second),
		docker.WithVIFDriver(vifs),
		docker.WithPortObserver(hook),
	)
	if err != nil {
		return err
	}
	undo = append(undo, drv.Close)
	var spawned []string
	undo = append(undo, func() error {
		var errs []error
		for _, id := range spawned {
			errs = append(errs, drv.Destroy(bg, id))
		}
		return errors.Join(errs...)
	})
	guest := []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"}
	spawn := func(id string, v network.VIF, group string) error {
		if group != "" {
			groupOf[v.ID] = group
		}
		t0 := time.Now()
		spawned = append(spawned, id)
		if _, err := drv.Spawn(ctx, hypervisor.InstanceSpec{ID: id, Name: id, Image: imageID, Command: guest, MemoryMB: 64, VIFs: []network.VIF{v}}); err != nil {
			return err
		}
		pid, err := pidOf(ctx, drv, id)
		if err != nil {
			return err
		}
		out, _ := inNetns(ctx, pid, "ip", "-br", "addr", "show", "eth0")
		fmt.Printf("    %s spawned in %s; inside: %s\n", id, time.Since(t0).Round(time.Millisecond), strings.Join(strings.Fields(out), " "))
		return nil
	}

	step("Linux bridge: lb-1 and lb-2 on br-lab (10.0.1.0/24, fd00:1::/64)")
	lb1, lb2 := labVIF(network.VIFTypeBridge, "br-lab", 1, 2), labVIF(network.VIFTypeBridge, "br-lab", 1, 3)
	if err := spawn("lb-1", lb1, "client"); err != nil {
		return err
	}
	if err := spawn("lb-2", lb2, "web"); err != nil {
		return err
	}
	if err := pingBoth(ctx, drv, "lb-1", lb1, "lb-2", lb2); err != nil {
		return err
	}

	step("Open vSwitch (hybrid plug, userspace datapath): ovs-1 and ovs-2 on br-int (10.0.2.0/24, fd00:2::/64)")
	ov1, ov2 := labVIF(network.VIFTypeOVS, intBridge, 2, 2), labVIF(network.VIFTypeOVS, intBridge, 2, 3)
	if err := spawn("ovs-1", ov1, ""); err != nil {
		return err
	}
	if err := spawn("ovs-2", ov2, ""); err != nil {
		return err
	}
	dev, _ := network.DeviceNames(ov1.ID)
	if ids, err := sw.Vsctl(ctx, "get", "Interface", dev.VethOVS, "external-ids"); err == nil {
		fmt.Printf("    %s on %s: %s\n", dev.VethOVS, intBridge, ids)
	}
	if err := pingBoth(ctx, drv, "ovs-1", ov1, "ovs-2", ov2); err != nil {
		return err
	}

	step("hard reboot ovs-2 and lb-2: their VIFs are attached again")
	for _, id := range []string{"ovs-2", "lb-2"} {
		if err := drv.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true}); err != nil {
			return err
		}
	}
	if err := ping(ctx, drv, "ovs-1", "ovs-2", ov2); err != nil {
		return err
	}
	if err := ping(ctx, drv, "lb-1", "lb-2", lb2); err != nil {
		return err
	}

	step("security group \"web\" on lb-2: TCP 8080 admitted, TCP 8081 dropped")
	for _, p := range []int{8080, 8081} {
		if err := execDetached(ctx, cli, "dockervisor-labnet-lb-2", "/bin/busybox", "httpd", "-p", fmt.Sprint(p), "-h", "/"); err != nil {
			return err
		}
	}
	pid1, err := pidOf(ctx, drv, "lb-1")
	if err != nil {
		return err
	}
	for _, p := range []int{8080, 8081} {
		n, err := fetch(ctx, fmt.Sprintf("/proc/%d/ns/net", pid1), fmt.Sprintf("http://%s:%d/bin/busybox", lb2.Subnets[0].IPs[0], p))
		switch {
		case err == nil && p == 8080:
			fmt.Printf("    lb-1 → lb-2:%d: %d bytes over TCP\n", p, n)
		case err != nil && p == 8081:
			fmt.Printf("    lb-1 → lb-2:%d: dropped (%v)\n", p, err)
		default:
			return fmt.Errorf("security group: port %d: got %d bytes, error %v", p, n, err)
		}
	}

	floating, fixed := netip.MustParseAddr("203.0.113.10"), lb2.Subnets[0].IPs[0]
	step("floating IP %s → lb-2 (%s), reached from an external namespace", floating, fixed)
	if err := sh(ctx, "ip", "netns", "add", extNS); err != nil {
		return err
	}
	undo = append(undo, func() error { return sh(bg, "ip", "netns", "delete", extNS) })
	for _, c := range [][]string{
		{"ip", "-n", hostNS, "link", "add", "pub0", "type", "veth", "peer", "name", "ext0", "netns", extNS},
		{"ip", "-n", hostNS, "addr", "add", "203.0.113.1/24", "dev", "pub0"},
		{"ip", "-n", hostNS, "link", "set", "pub0", "up"},
		{"ip", "-n", hostNS, "addr", "add", "10.0.1.1/24", "dev", "br-lab"}, // the instances' gateway
		{"ip", "netns", "exec", hostNS, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "-n", extNS, "addr", "add", "203.0.113.2/24", "dev", "ext0"},
		{"ip", "-n", extNS, "link", "set", "ext0", "up"},
		{"ip", "-n", extNS, "link", "set", "lo", "up"},
	} {
		if err := sh(ctx, c...); err != nil {
			return err
		}
	}
	fip, err := floatingip.New("pub0", floatingip.WithHostNetNS(hostPath))
	if err != nil {
		return err
	}
	if err := fip.Bind(ctx, floating, fixed); err != nil {
		return err
	}
	undo = append(undo, func() error { return fip.Unbind(bg, floating) })
	n, err := fetch(ctx, "/run/netns/"+extNS, fmt.Sprintf("http://%s:8080/bin/busybox", floating))
	if err != nil {
		return fmt.Errorf("floating IP: %w", err)
	}
	fmt.Printf("    external 203.0.113.2 → %s:8080: %d bytes over TCP, served by lb-2\n", floating, n)

	step("destroy the network instances; the host side goes with them")
	for _, id := range spawned {
		if err := drv.Destroy(ctx, id); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, "ip", "-n", hostNS, "-o", "link", "show").Output()
	if err != nil {
		return err
	}
	fmt.Printf("    links left in %s: %d (lo, pub0; no tap, no br-lab)\n", hostNS, strings.Count(string(out), "\n"))
	if ports, err := sw.Vsctl(ctx, "list-ports", intBridge); err == nil {
		fmt.Printf("    ports left on %s: %q\n", intBridge, ports)
	}
	fmt.Printf("    filtered ports left: %d\n", len(fw.Ports()))
	return nil
}

// labVIF is the VIF with address n of lab subnet sub: 10.0.sub.n/24 and
// fd00:sub::n/64, gateways .1 and ::1, MTU 1400, a DNS server.
func labVIF(typ network.VIFType, bridge string, sub, n int) network.VIF {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return network.VIF{
		ID:         fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]),
		Address:    network.MAC{0x02, 0xd7, 0x1a, 0xb0, byte(sub), byte(n)},
		Type:       typ,
		HybridPlug: typ == network.VIFTypeOVS,
		Bridge:     bridge,
		MTU:        1400,
		Subnets: []network.Subnet{
			{CIDR: netip.MustParsePrefix(fmt.Sprintf("10.0.%d.0/24", sub)), Gateway: netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", sub)),
				IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", sub, n))}, DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}},
			{CIDR: netip.MustParsePrefix(fmt.Sprintf("fd00:%d::/64", sub)), Gateway: netip.MustParseAddr(fmt.Sprintf("fd00:%d::1", sub)),
				IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd00:%d::%d", sub, n))}},
		},
	}
}

// pingBoth pings b's addresses (IPv4 and IPv6) from a, and a's from b.
func pingBoth(ctx context.Context, drv hypervisor.Driver, a string, aVIF network.VIF, b string, bVIF network.VIF) error {
	if err := ping(ctx, drv, a, b, bVIF); err != nil {
		return err
	}
	return ping(ctx, drv, b, a, aVIF)
}

// ping pings every fixed IP of toVIF (instance to) from instance from.
func ping(ctx context.Context, drv hypervisor.Driver, from, to string, toVIF network.VIF) error {
	pid, err := pidOf(ctx, drv, from)
	if err != nil {
		return err
	}
	for _, sn := range toVIF.Subnets {
		out, err := inNetns(ctx, pid, "busybox", "ping", "-c", "1", "-W", "5", sn.IPs[0].String())
		if err != nil {
			return fmt.Errorf("ping %s → %s (%s): %w: %s", from, to, sn.IPs[0], err, out)
		}
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "time=") {
				line = strings.TrimSpace(l)
			}
		}
		fmt.Printf("    ping %s → %s %s: %s\n", from, to, sn.IPs[0], line)
	}
	return nil
}

func pidOf(ctx context.Context, drv hypervisor.Driver, id string) (int, error) {
	info, err := drv.Info(ctx, id)
	if err != nil {
		return 0, err
	}
	if info.PID <= 0 {
		return 0, fmt.Errorf("%s is %s, not running", id, info.State)
	}
	return info.PID, nil
}

// inNetns runs a host command inside the network namespace of process pid.
func inNetns(ctx context.Context, pid int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", pid), "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// fetch downloads url with busybox wget from inside the namespace at path
// and returns the size, giving up after 4 s (a dropped SYN never answers).
func fetch(ctx context.Context, path, url string) (int, error) {
	var last error
	for range 3 { // the server may still be starting
		c, cancel := context.WithTimeout(ctx, 4*time.Second)
		out, err := exec.CommandContext(c, "nsenter", "--net="+path, "--", "busybox", "wget", "-q", "-O", "-", url).Output()
		cancel()
		if err == nil {
			return len(out), nil
		}
		last = err
		if c.Err() != nil {
			return 0, fmt.Errorf("no answer in 4 s")
		}
		time.Sleep(300 * time.Millisecond)
	}
	return 0, last
}

// execDetached runs a command inside a container in the background.
func execDetached(ctx context.Context, cli *client.Client, container string, cmd ...string) error {
	res, err := cli.ExecCreate(ctx, container, client.ExecCreateOptions{Cmd: cmd})
	if err != nil {
		return err
	}
	_, err = cli.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true})
	return err
}

func sh(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
