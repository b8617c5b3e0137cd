package docker

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func labelDriver(prefix string) *Driver {
	return (&Driver{core: core{opts: options{labelPrefix: prefix, namePrefix: "dv-"}}}).wire()
}

func TestLabelsRoundTrip(t *testing.T) {
	d := labelDriver("io.test.")
	spec := storedSpec{Version: specLabelVersion, ID: "vm1", Name: "vm-one", Image: "img", EngineImage: "img:1",
		VCPUs: 2, MemoryMB: 64, Labels: map[string]string{"team": "a"}, Metadata: map[string]string{"k": "v"}}
	l, err := d.containerLabels(spec)
	require.NoError(t, err)
	assert.Equal(t, "a", l["team"], "the caller's labels are kept")
	assert.Equal(t, "vm1", l["io.test.instance-id"])

	got, ok := d.specFromLabels(l)
	require.True(t, ok)
	assert.Equal(t, spec, got)

	_, ok = labelDriver("io.other.").specFromLabels(l)
	assert.False(t, ok, "another prefix does not see the container")
}

func TestSpecFromDamagedLabels(t *testing.T) {
	d := labelDriver("io.test.")
	got, ok := d.specFromLabels(map[string]string{"io.test.instance-id": "vm1", "io.test.spec": "{not json"})
	require.True(t, ok, "the ID label alone makes it ours")
	assert.Equal(t, storedSpec{Version: specLabelVersion, ID: "vm1"}, got)

	got, ok = d.specFromLabels(map[string]string{"io.test.instance-id": "vm1", "io.test.spec": `{"id":"vm2"}`})
	require.True(t, ok)
	assert.Equal(t, "vm1", got.ID, "a spec naming another ID is not trusted")
}

func TestCheckUserLabels(t *testing.T) {
	d := labelDriver("io.test.")
	require.NoError(t, d.checkUserLabels(map[string]string{"team": "a", "io.testing": "b"}))
	err := d.checkUserLabels(map[string]string{"io.test.spec": "x"})
	require.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
}
