package docker

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Label keys, after the label prefix.
const (
	labelInstanceID = "instance-id"
	labelSpec       = "spec"
)

// specLabelVersion is bumped when storedSpec changes incompatibly.
const specLabelVersion = 1

// storedSpec is the spawn-time spec kept as a JSON label on the container.
// Labels are immutable after create, and so is this.
type storedSpec struct {
	Version      int               `json:"v"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Image        string            `json:"image"`
	EngineImage  string            `json:"engine_image"`
	VCPUs        int               `json:"vcpus"`
	HardCPULimit bool              `json:"hard_cpu_limit,omitempty"`
	MemoryMB     int64             `json:"memory_mb"`
	Labels       map[string]string `json:"labels,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	// Command and Env are the spec's, kept so that Rebuild can create the
	// instance again (absent from containers made before they were kept).
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Boot is "os" for an OS instance.
	Boot string `json:"boot,omitempty"`
	// CgroupGate is true for an OS instance whose init waits until the
	// driver has made its cgroup mount writable (see osinstance.go).
	CgroupGate bool `json:"cgroup_gate,omitempty"`
}

// instanceSpec returns the spawn-time spec s keeps, for a container
// created again (Rebuild): every field but the boot data and the VIFs,
// which live in records of their own.
func (s storedSpec) instanceSpec() hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{
		ID:           s.ID,
		Name:         s.Name,
		Image:        s.Image,
		Command:      s.Command,
		Boot:         hypervisor.BootMode(s.Boot),
		Env:          s.Env,
		VCPUs:        s.VCPUs,
		HardCPULimit: s.HardCPULimit,
		MemoryMB:     s.MemoryMB,
		Labels:       s.Labels,
		Metadata:     s.Metadata,
	}
}

func (d *core) label(key string) string { return d.opts.labelPrefix + key }

// checkUserLabels rejects caller labels that use the reserved prefix.
func (d *core) checkUserLabels(labels map[string]string) error {
	for k := range labels {
		if strings.HasPrefix(k, d.opts.labelPrefix) {
			return fmt.Errorf("%w: label %q uses the reserved prefix %q", hypervisor.ErrInvalidArgument, k, d.opts.labelPrefix)
		}
	}
	return nil
}

// containerLabels returns the labels of a new container: the caller's, the
// instance ID and the stored spec.
func (d *core) containerLabels(s storedSpec) (map[string]string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	l := make(map[string]string, len(s.Labels)+2)
	maps.Copy(l, s.Labels)
	l[d.label(labelInstanceID)] = s.ID
	l[d.label(labelSpec)] = string(b)
	return l, nil
}

// specFromLabels reads the stored spec back. ok is false for containers
// this driver did not create.
func (d *core) specFromLabels(labels map[string]string) (s storedSpec, ok bool) {
	id, ok := labels[d.label(labelInstanceID)]
	if !ok {
		return storedSpec{}, false
	}
	if err := json.Unmarshal([]byte(labels[d.label(labelSpec)]), &s); err != nil || s.ID != id {
		// A damaged spec label: keep what the ID label says.
		return storedSpec{Version: specLabelVersion, ID: id}, true
	}
	return s, true
}
