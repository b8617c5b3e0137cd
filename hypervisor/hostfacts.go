package hypervisor

import (
	"context"
	"net/netip"
)

// HostFacts are the static facts of a compute node a scheduler wants.
type HostFacts struct {
	// NodeUUID identifies the node. It is generated once and persisted,
	// so it stays the same across restarts of the agent and the host.
	NodeUUID string `json:"node_uuid"`
	// Hostname is the node's host name.
	Hostname string `json:"hostname"`
	// Addresses are the node's global unicast IP addresses, sorted.
	Addresses []netip.Addr `json:"addresses"`
	// Architecture is the CPU architecture in Go's spelling ("amd64",
	// "arm64").
	Architecture string `json:"architecture"`
	// OS is the operating system ("linux").
	OS string `json:"os"`
	// KernelVersion is the host kernel's release.
	KernelVersion string `json:"kernel_version"`
	// EngineVersion is the version of the backend's engine.
	EngineVersion string `json:"engine_version"`
}

// HostFactsReporter reports a node's static facts.
type HostFactsReporter interface {
	// HostFacts returns the node's facts.
	HostFacts(ctx context.Context) (HostFacts, error)
}
