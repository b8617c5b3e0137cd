package hypervisortest

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// FakeStoreImage is the store image of the Fakes made by
// [NewFakeAgentHarness].
const FakeStoreImage = "fake-store-image"

// fakeEventBuffer is the event bound of the Fakes made by
// NewFakeAgentHarness, small so that the slow-consumer check is quick.
const fakeEventBuffer = 16

// NewFakeAgentHarness returns an [AgentHarness] for a new Fake (with a
// store image, a small event buffer and every hook), closed when t ends.
func NewFakeAgentHarness(t *testing.T, opts ...FakeOption) AgentHarness {
	t.Helper()
	uuid := "3f1b6a52-9c0e-4d7e-8a1f-0b8e2f6c9d41"
	f := NewFake(append([]FakeOption{WithImages(FakeImage), WithEventBuffer(fakeEventBuffer), WithNodeUUID(uuid)}, opts...)...)
	f.AddStoreImage(FakeStoreImage, 2<<20)
	h := NewFakeHarness(t)
	h.Driver = f
	h.Crash = func(t *testing.T, id string) {
		t.Helper()
		require.NoError(t, f.Crash(id, 1), "Crash(%q)", id)
	}
	h.WriteConsole = func(t *testing.T, id string, data []byte) {
		t.Helper()
		require.NoError(t, f.WriteConsole(id, data), "WriteConsole(%q)", id)
	}
	t.Cleanup(func() { _ = f.Close() })
	return AgentHarness{
		Harness: h,
		MakeHalfSpawned: func(t *testing.T, spec hypervisor.InstanceSpec) {
			require.NoError(t, f.AddHalfSpawned(spec))
		},
		MakeOrphanRecord: func(_ *testing.T, id string) { f.AddOrphanRecord(id) },
		InterruptSnapshot: func(t *testing.T, id string) {
			require.NoError(t, f.InterruptSnapshot(id))
		},
		OrphanRecordExists: func(_ *testing.T, id string) bool {
			return slices.Contains(f.OrphanRecords(), id)
		},
		RestartEngine: func(*testing.T) { f.RestartEngine() },
		MemoryInUseMB: fakeMemoryUseBytes >> 20,
		OOMKill: func(t *testing.T, id string) {
			require.NoError(t, f.OOMKill(id))
		},
		StoreImage:  FakeStoreImage,
		EventBuffer: fakeEventBuffer,
		Reopen: func(*testing.T) hypervisor.AgentDriver {
			return NewFake(WithNodeUUID(uuid))
		},
	}
}
