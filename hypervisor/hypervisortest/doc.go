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
// Fake passes it, and so must the Docker backend, run against a real engine:
//
//	func TestConformance(t *testing.T) {
//		hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
//			d := newDriver(t) // a fresh driver, closed by t.Cleanup
//			return hypervisortest.Harness{Driver: d, Image: ref, Command: []string{"sleep", "3600"}}
//		})
//	}
package hypervisortest
