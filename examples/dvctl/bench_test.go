package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/examples/dvctl/lab"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// BenchmarkLab times `lab up` and `lab down` of a lab of 10 instances on 2
// networks against the same work done by sequential single commands: a
// `spawn` and a `vif attach` per instance (the bridges in a private host
// namespace too), then a `destroy` per instance. Every command runs through
// Run as the dvctl process would, each with its own driver. Metrics:
// up-s and down-s of each way, and the ratios sequential/lab.
func BenchmarkLab(b *testing.B) {
	testenv.MustHaveRoot(b)
	testenv.MustHaveDocker(b)
	img := testenv.BusyboxImage(b)
	u := testenv.UniqueName("dvb")
	dir := b.TempDir()
	b.Setenv("DVCTL_STATE_DIR", filepath.Join(dir, "state"))
	b.Setenv("DVCTL_LABEL_PREFIX", "io."+u+".")
	b.Setenv("DVCTL_NAME_PREFIX", u+"-")
	b.Setenv("DVCTL_STOP_TIMEOUT", "1s")
	host := testenv.NewHostNetns(b)
	b.Setenv("DVCTL_HOST_NETNS", host.Path)
	defer func() {
		cleanupDriver(b, filepath.Join(dir, "state"), "io."+u+".", u+"-", filepath.Join(dir, "images"))
	}()

	const n = 10
	var file strings.Builder
	fmt.Fprintf(&file, "name: %s\nnetworks:\n  n0: {cidr: 10.80.0.0/24}\n  n1: {cidr: 10.81.0.0/24}\ninstances:\n", u)
	for i := range n {
		fmt.Fprintf(&file, "  i%d:\n    image: %s\n    command: [sleep, \"3600\"]\n    ports: [{network: n%d, ip: 10.8%d.0.%d}]\n", i, img, i%2, i%2, 10+i)
	}
	labFile := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(labFile, []byte(file.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := lab.Load(labFile)
	if err != nil {
		b.Fatal(err)
	}

	run := func(args ...string) {
		var out, errOut bytes.Buffer
		if code := Run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != 0 {
			b.Fatalf("dvctl %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
	}
	var labUp, labDown, seqUp, seqDown time.Duration
	for b.Loop() {
		t0 := time.Now()
		run("lab", "up", labFile)
		labUp += time.Since(t0)
		t0 = time.Now()
		run("lab", "down", labFile)
		labDown += time.Since(t0)

		t0 = time.Now()
		for i := range n {
			spec := f.Spec(fmt.Sprintf("i%d", i))
			v := spec.VIFs[0]
			id := fmt.Sprintf("s%d", i)
			run("spawn", id, "--image", img, "--", "sleep", "3600")
			run("vif", "attach", id, "--port", v.ID, "--bridge", v.Bridge, "--mac", v.Address.String(),
				"--ip", fmt.Sprintf("%s/%d", v.Subnets[0].IPs[0], v.Subnets[0].CIDR.Bits()))
		}
		seqUp += time.Since(t0)
		t0 = time.Now()
		for i := range n {
			run("destroy", fmt.Sprintf("s%d", i))
		}
		seqDown += time.Since(t0)
	}
	it := float64(b.N)
	b.ReportMetric(labUp.Seconds()/it, "lab-up-s")
	b.ReportMetric(labDown.Seconds()/it, "lab-down-s")
	b.ReportMetric(seqUp.Seconds()/it, "seq-up-s")
	b.ReportMetric(seqDown.Seconds()/it, "seq-down-s")
	b.ReportMetric(seqUp.Seconds()/labUp.Seconds(), "up-speedup")
	b.ReportMetric(seqDown.Seconds()/labDown.Seconds(), "down-speedup")
}

// BenchmarkLabFirewall times `lab up` and `lab down` of a 10-instance,
// 2-network lab with a security group on every port, an external network
// and a floating IP per instance, against the same lab without them
// (the baseline) in the same run. Metrics: seconds of each, and the ratios
// full/plain.
func BenchmarkLabFirewall(b *testing.B) {
	testenv.MustHaveRoot(b)
	testenv.MustHaveDocker(b)
	img := testenv.BusyboxImage(b)
	u := testenv.UniqueName("dvf")
	dir := b.TempDir()
	b.Setenv("DVCTL_STATE_DIR", filepath.Join(dir, "state"))
	b.Setenv("DVCTL_LABEL_PREFIX", "io."+u+".")
	b.Setenv("DVCTL_NAME_PREFIX", u+"-")
	b.Setenv("DVCTL_STOP_TIMEOUT", "1s")
	defer func() {
		cleanupDriver(b, filepath.Join(dir, "state"), "io."+u+".", u+"-", filepath.Join(dir, "images"))
	}()
	const n = 10
	write := func(name string, full bool) string {
		var file strings.Builder
		fmt.Fprintf(&file, "name: %s\nnetworks:\n  n0: {cidr: 10.80.0.0/24, gateway: 10.80.0.1}\n  n1: {cidr: 10.81.0.0/24, gateway: 10.81.0.1}\n", name)
		groups := ""
		if full {
			file.WriteString("security_groups:\n  g: [{protocol: icmp}, {protocol: tcp, port: 8080}, {direction: egress}]\nexternal: {cidr: 192.0.2.0/24}\nfloating_ips:\n")
			for i := range n {
				fmt.Fprintf(&file, "  - {ip: 192.0.2.%d, instance: i%d}\n", 10+i, i)
			}
			groups = ", security_groups: [g]"
		}
		file.WriteString("instances:\n")
		for i := range n {
			fmt.Fprintf(&file, "  i%d:\n    image: %s\n    command: [sleep, \"3600\"]\n    ports: [{network: n%d, ip: 10.8%d.0.%d%s}]\n", i, img, i%2, i%2, 10+i, groups)
		}
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(file.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		return p
	}
	plain, full := write(u+"p", false), write(u+"f", true)
	run := func(args ...string) {
		var out, errOut bytes.Buffer
		if code := Run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != 0 {
			b.Fatalf("dvctl %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
	}
	var pUp, pDown, fUp, fDown time.Duration
	for b.Loop() {
		for _, c := range []struct {
			file     string
			up, down *time.Duration
		}{{plain, &pUp, &pDown}, {full, &fUp, &fDown}} {
			t0 := time.Now()
			run("lab", "up", c.file)
			*c.up += time.Since(t0)
			t0 = time.Now()
			run("lab", "down", c.file)
			*c.down += time.Since(t0)
		}
	}
	it := float64(b.N)
	b.ReportMetric(pUp.Seconds()/it, "plain-up-s")
	b.ReportMetric(pDown.Seconds()/it, "plain-down-s")
	b.ReportMetric(fUp.Seconds()/it, "full-up-s")
	b.ReportMetric(fDown.Seconds()/it, "full-down-s")
	b.ReportMetric(fUp.Seconds()/pUp.Seconds(), "up-ratio")
	b.ReportMetric(fDown.Seconds()/pDown.Seconds(), "down-ratio")
}
