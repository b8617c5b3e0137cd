package docker

import (
	"fmt"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// BenchmarkCloudInitMetadata measures an OS instance on a network with a
// DHCP server and the metadata service, from Spawn to cloud-init done
// (user-data run, key installed), reading its boot data from the metadata
// service (no config drive: cloud-init's DHCP client, then HTTP) and, in
// the same iterations, from its config drive; it reports both and their
// ratio. Run it with -bench CloudInitMetadata -benchtime 3x.
func BenchmarkCloudInitMetadata(b *testing.B) {
	testenv.MustHaveDocker(b)
	img := testenv.OSImage(b).Ref
	l := newServiceLab(b)
	uniq := testenv.UniqueName("b")
	d, err := New(append(l.options(), WithLabelPrefix("io.dockervisor."+uniq+"."), WithNamePrefix("dv-"+uniq+"-"), WithStateDir(b.TempDir()))...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	ctx := b.Context()
	key := sshKey(&testing.T{})
	var drive, service time.Duration
	for i := 0; b.Loop(); i++ {
		for _, noDrive := range []bool{false, true} {
			spec := hypervisor.InstanceSpec{
				ID: fmt.Sprintf("ci%d-%v", i, noDrive), Image: img, MemoryMB: 256, NoConfigDrive: noDrive,
				UserData: []byte("#cloud-config\nlocale: C.UTF-8\nruncmd:\n  - [ touch, /run/user-data-ran ]\n"),
				SSHKeys:  []hypervisor.SSHKey{{Name: "k", Data: key}},
				VIFs:     []network.VIF{l.vif(10 + i%100)},
			}
			t0 := time.Now()
			if _, err := d.Spawn(ctx, spec); err != nil {
				b.Fatal(err)
			}
			st, err := d.WaitBooted(ctx, spec.ID, hypervisor.WaitBootOptions{CloudInit: true})
			if err != nil {
				b.Fatal(err)
			}
			took := time.Since(t0)
			want := map[bool]string{false: "configdrive", true: "openstacklocal"}[noDrive]
			if st.CloudInit.Datasource != want {
				b.Fatalf("cloud-init datasource %q, want %q", st.CloudInit.Datasource, want)
			}
			if noDrive {
				service += took
			} else {
				drive += took
			}
			if err := d.Destroy(ctx, spec.ID); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(service.Milliseconds())/n, "metadata-service-ms")
	b.ReportMetric(float64(drive.Milliseconds())/n, "config-drive-ms")
	b.ReportMetric(service.Seconds()/drive.Seconds(), "ratio")
}
