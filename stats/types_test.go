package stats

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAttachPortIDs(t *testing.T) {
	ifs := []Interface{{Device: "lo"}, {Device: "eth0"}, {Device: "eth1"}}
	AttachPortIDs(ifs, map[string]string{"eth0": "port-a", "eth1": "port-b", "eth9": "port-x"})
	assert.Equal(t, []Interface{{Device: "lo"}, {Device: "eth0", PortID: "port-a"}, {Device: "eth1", PortID: "port-b"}}, ifs)
}
