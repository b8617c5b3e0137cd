package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dockervisor/dockervisor/examples/dvctl/lab"
	"github.com/dockervisor/dockervisor/network/dhcp"
	"github.com/dockervisor/dockervisor/network/ovs/ovsrun"
	"github.com/dockervisor/dockervisor/pidproc"
)

// cleanupLabNetworks removes what a failed lab script may leave of its
// labs' networks (lab states in the state directory, names starting with
// unique), failing t for each.
func cleanupLabNetworks(ctx context.Context, t testing.TB, state, unique string) {
	// A failed lab script may leave its lab's private Open vSwitch.
	states, _ := filepath.Glob(filepath.Join(state, "labs", "*.json"))
	for _, p := range states {
		var st struct {
			OVSDir string `json:"ovs_dir"`
		}
		if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &st) == nil && st.OVSDir != "" {
			if sw, err := ovsrun.Open(st.OVSDir); err == nil {
				t.Errorf("cleanup: Open vSwitch of lab %s left behind in %s", p, st.OVSDir)
				if err := sw.Stop(ctx); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
			_ = os.RemoveAll(st.OVSDir)
		}
	}
	// A failed lab script may leave its networks' DHCP servers and its
	// metadata service running.
	for _, p := range states {
		var st struct {
			Services []struct {
				DHCPDir string `json:"dhcp_dir"`
			} `json:"services"`
			MetadataDir string `json:"metadata_dir"`
		}
		if b, err := os.ReadFile(p); err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		for _, s := range st.Services {
			if srv, err := dhcp.Open(s.DHCPDir); err == nil && srv.Running() {
				t.Errorf("cleanup: DHCP server of lab %s left behind in %s", p, s.DHCPDir)
				_ = srv.Stop(ctx)
			}
			_ = os.RemoveAll(s.DHCPDir)
		}
		if st.MetadataDir != "" {
			if proc, err := pidproc.Open(filepath.Join(st.MetadataDir, "metadata.pid"), st.MetadataDir); err == nil {
				t.Errorf("cleanup: metadata service of lab %s left behind in %s", p, st.MetadataDir)
				_ = proc.Terminate(ctx)
			}
			_ = os.RemoveAll(filepath.Dir(st.MetadataDir))
		}
	}
	// A failed lab script may leave its lab's namespace.
	nss, _ := filepath.Glob("/run/netns/" + lab.NetnsName(unique) + "*")
	for _, ns := range nss {
		t.Errorf("cleanup: network namespace %s left behind", ns)
		if out, err := exec.Command("ip", "netns", "del", filepath.Base(ns)).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del: %v: %s", err, out)
		}
	}
}
