package hypervisor_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func TestValidateID(t *testing.T) {
	good := []string{"a", "0", "vm-1", "VM_1.x", "3f1c6e1e-5b7a-4c6e-9f0e-1a2b3c4d5e6f", strings.Repeat("a", hypervisor.MaxIDLength)}
	for _, id := range good {
		assert.NoError(t, hypervisor.ValidateID(id), "%q", id)
	}
	bad := []string{"", "-a", ".a", "_a", "a/b", "a b", "a:b", "ä", "a\x00", strings.Repeat("a", hypervisor.MaxIDLength+1)}
	for _, id := range bad {
		assert.ErrorIs(t, hypervisor.ValidateID(id), hypervisor.ErrInvalidArgument, "%q", id)
	}
}

func TestValidHostname(t *testing.T) {
	good := []string{"a", "web-1", "a.b.c", "A1", strings.Repeat("a", 63), strings.Repeat("a.", 126) + "a"}
	for _, n := range good {
		assert.True(t, hypervisor.ValidHostname(n), "%q", n)
	}
	bad := []string{"", "bad_name!", "-a", "a-", "a..b", ".a", "a.", strings.Repeat("a", 64), strings.Repeat("a.", 127) + "a"}
	for _, n := range bad {
		assert.False(t, hypervisor.ValidHostname(n), "%q", n)
	}
}

func TestInstanceSpecValidate(t *testing.T) {
	valid := hypervisor.InstanceSpec{ID: "vm-1", Image: "busybox", VCPUs: 2, MemoryMB: 64}
	require.NoError(t, valid.Validate())

	tests := []struct {
		name string
		edit func(*hypervisor.InstanceSpec)
		ok   bool
	}{
		{"ZeroVCPUs", func(s *hypervisor.InstanceSpec) { s.VCPUs = 0 }, true},
		{"MaxVCPUs", func(s *hypervisor.InstanceSpec) { s.VCPUs = hypervisor.MaxVCPUs }, true},
		{"NoMemoryLimit", func(s *hypervisor.InstanceSpec) { s.MemoryMB = 0 }, true},
		{"MinMemory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = hypervisor.MinMemoryMB }, true},
		{"MaxMemory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = hypervisor.MaxMemoryMB }, true},
		{"Name", func(s *hypervisor.InstanceSpec) { s.Name = "web.example.org" }, true},
		{"EnvAndLabels", func(s *hypervisor.InstanceSpec) {
			s.Env = map[string]string{"A": "1"}
			s.Labels = map[string]string{"k": ""}
		}, true},

		{"EmptyID", func(s *hypervisor.InstanceSpec) { s.ID = "" }, false},
		{"IDNotAHostname", func(s *hypervisor.InstanceSpec) { s.ID = "vm_1" }, false},
		{"IDNotAHostnameButName", func(s *hypervisor.InstanceSpec) { s.ID, s.Name = "vm_1", "vm-1" }, true},
		{"BadName", func(s *hypervisor.InstanceSpec) { s.Name = "bad_name!" }, false},
		{"LongLabel", func(s *hypervisor.InstanceSpec) { s.Name = strings.Repeat("a", 64) }, false},
		{"EmptyImage", func(s *hypervisor.InstanceSpec) { s.Image = " " }, false},
		{"NegativeVCPUs", func(s *hypervisor.InstanceSpec) { s.VCPUs = -1 }, false},
		{"TooManyVCPUs", func(s *hypervisor.InstanceSpec) { s.VCPUs = hypervisor.MaxVCPUs + 1 }, false},
		{"NegativeMemory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = -1 }, false},
		{"TinyMemory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = hypervisor.MinMemoryMB - 1 }, false},
		{"HugeMemory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = hypervisor.MaxMemoryMB + 1 }, false},
		{"EmptyEnvName", func(s *hypervisor.InstanceSpec) { s.Env = map[string]string{"": "x"} }, false},
		{"EnvNameWithEquals", func(s *hypervisor.InstanceSpec) { s.Env = map[string]string{"A=B": "x"} }, false},
		{"EmptyLabelKey", func(s *hypervisor.InstanceSpec) { s.Labels = map[string]string{"": "x"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid
			tt.edit(&s)
			err := s.Validate()
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
			}
		})
	}
}

func TestInstanceSpecDefaults(t *testing.T) {
	s := hypervisor.InstanceSpec{ID: "vm-1"}
	assert.Equal(t, "vm-1", s.Hostname())
	assert.Equal(t, 1, s.EffectiveVCPUs())
	s.Name, s.VCPUs = "web", 4
	assert.Equal(t, "web", s.Hostname())
	assert.Equal(t, 4, s.EffectiveVCPUs())
}
