// Package hypervisortest helps test code that uses a [hypervisor.Driver],
// and the backends that implement one.
//
// [Fake] is a stateful, in-memory Driver that follows the state table,
// idempotency, concurrency and error rules of package hypervisor. It has no
// engine behind it: its test helpers ([Fake.Crash], [Fake.WriteConsole],
// [Fake.AddImage]) stand in for what a real guest or engine would do.
//
// [TestDriver] is the conformance suite every backend must pass, in the
// manner of containerd's snapshotter suite or [testing/fstest.TestFS]. The
// Fake passes it (see [NewFakeHarness]), and so must the Docker backend, run
// against a real engine. The factory returns a fresh driver per subtest;
// the hooks that the backend cannot offer stay nil and their checks are
// skipped:
//
//	func TestConformance(t *testing.T) {
//		cli := testenv.MustHaveDocker(t)
//		img := testenv.BusyboxImage(t)
//		hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
//			d := newDriver(t) // a fresh driver, closed by t.Cleanup
//			return hypervisortest.Harness{
//				Driver:  d,
//				Image:   img,
//				Command: []string{"sleep", "3600"},
//				Crash: func(t *testing.T, id string) { // kill it behind the driver's back
//					info, err := d.Info(t.Context(), id)
//					require.NoError(t, err)
//					_, err = cli.ContainerKill(t.Context(), info.BackendID, client.ContainerKillOptions{Signal: "KILL"})
//					require.NoError(t, err)
//				},
//				ConsoleCommand: func(lines []string) []string {
//					return append([]string{"sh", "-c", `for l in "$@"; do echo "$l"; done; exec sleep 3600`, "sh"}, lines...)
//				},
//				Exec:               busyboxExecCommands(), // see ExecCommands
//				ConsoleEchoCommand: []string{"sh", "-c", `while read -r l; do echo "echo: $l"; done`},
//			}
//		})
//	}
package hypervisortest
