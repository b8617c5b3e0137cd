package hypervisortest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network"
)

// FakeImage is the image a [NewFakeHarness] Fake has registered.
const FakeImage = "busybox:latest"

// NewFakeHarness returns a [Harness] for [TestDriver] around a new Fake
// built with opts and [WithImages](FakeImage), closed when t ends. Its
// hooks use [Fake.Crash] (exit status 1), [Fake.WriteConsole] and a simple
// OVS VIF per n.
func NewFakeHarness(t *testing.T, opts ...FakeOption) Harness {
	t.Helper()
	f := NewFake(append([]FakeOption{WithImages(FakeImage)}, opts...)...)
	t.Cleanup(func() { _ = f.Close() }) // Close never fails
	return Harness{
		Driver:  f,
		Image:   FakeImage,
		Command: []string{"sleep", "3600"},
		Crash: func(t *testing.T, id string) {
			t.Helper()
			require.NoError(t, f.Crash(id, 1), "Crash(%q)", id)
		},
		WriteConsole: func(t *testing.T, id string, data []byte) {
			t.Helper()
			require.NoError(t, f.WriteConsole(id, data), "WriteConsole(%q)", id)
		},
		VIF:                FakeVIF,
		Exec:               FakeExecCommands(),
		ConsoleEchoCommand: FakeConsoleEchoCommand,
	}
}

// FakeVIF returns the n-th of distinct, valid OVS VIFs. Fakes plug any
// valid VIF. It has the signature of [Harness.VIF].
func FakeVIF(_ *testing.T, n int) network.VIF {
	return network.VIF{
		ID:      fmt.Sprintf("port-%04d", n),
		Address: network.MAC{0x02, 0, 0, 0, byte(n >> 8), byte(n)},
		Type:    network.VIFTypeOVS,
		Bridge:  "br-int",
		MTU:     1500,
	}
}
