package placement

import (
	"regexp"
	"slices"
	"strings"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Traits this package reports. Standard traits are used where one
// exists; the rest are custom.
const (
	// TraitComputeNode marks every provider a Reporter manages.
	TraitComputeNode = "COMPUTE_NODE"
	// TraitAttachInterface is the standard trait for Capabilities.HotplugVIF.
	TraitAttachInterface = "COMPUTE_NET_ATTACH_INTERFACE"
	// CustomTraitPrefix starts the custom traits derived from the other
	// capabilities ("CUSTOM_DOCKERVISOR_PAUSE", …).
	CustomTraitPrefix = "CUSTOM_DOCKERVISOR_"
	// HypervisorTraitPrefix starts the trait naming the hypervisor type
	// ("CUSTOM_HYPERVISOR_DOCKER").
	HypervisorTraitPrefix = "CUSTOM_HYPERVISOR_"
)

// capabilityTraits maps each capability to its trait.
var capabilityTraits = []struct {
	trait string
	has   func(hypervisor.Capabilities) bool
}{
	{TraitAttachInterface, func(c hypervisor.Capabilities) bool { return c.HotplugVIF }},
	{CustomTraitPrefix + "PAUSE", func(c hypervisor.Capabilities) bool { return c.Pause }},
	{CustomTraitPrefix + "REBOOT", func(c hypervisor.Capabilities) bool { return c.Reboot }},
	{CustomTraitPrefix + "SOFT_DELETE", func(c hypervisor.Capabilities) bool { return c.SoftDelete }},
	{CustomTraitPrefix + "SNAPSHOT", func(c hypervisor.Capabilities) bool { return c.Snapshot }},
	{CustomTraitPrefix + "IMAGE_STORE", func(c hypervisor.Capabilities) bool { return c.ImageStore }},
	{CustomTraitPrefix + "VIFS", func(c hypervisor.Capabilities) bool { return c.VIFs }},
	{CustomTraitPrefix + "EVENTS", func(c hypervisor.Capabilities) bool { return c.Events }},
	{CustomTraitPrefix + "HOST_RESOURCES", func(c hypervisor.Capabilities) bool { return c.HostResources }},
	{CustomTraitPrefix + "INSTANCE_STATS", func(c hypervisor.Capabilities) bool { return c.InstanceStats }},
}

// CapabilityTraits returns the traits of a driver's capabilities, sorted:
// [TraitComputeNode] always, the standard COMPUTE_* trait where one exists
// and a CUSTOM_DOCKERVISOR_* trait otherwise.
func CapabilityTraits(c hypervisor.Capabilities) []string {
	out := []string{TraitComputeNode}
	for _, ct := range capabilityTraits {
		if ct.has(c) {
			out = append(out, ct.trait)
		}
	}
	slices.Sort(out)
	return out
}

// managedTrait reports whether a Reporter owns trait t: it sets and
// removes it from the driver's state. Other traits on the provider (an
// operator's) are kept.
func managedTrait(t string) bool {
	if t == TraitComputeNode || t == TraitDisabled || strings.HasPrefix(t, HypervisorTraitPrefix) {
		return true
	}
	for _, ct := range capabilityTraits {
		if ct.trait == t {
			return true
		}
	}
	return false
}

var nonTraitChars = regexp.MustCompile(`[^A-Z0-9_]+`)

// CustomTrait turns name into a valid custom trait: upper case, every run
// of other characters replaced by '_', with the CUSTOM_ prefix. It
// returns "" for a name with no letter or digit.
func CustomTrait(name string) string {
	s := strings.Trim(nonTraitChars.ReplaceAllString(strings.ToUpper(name), "_"), "_")
	if s == "" {
		return ""
	}
	if strings.HasPrefix(s, "CUSTOM_") {
		return s
	}
	return "CUSTOM_" + s
}

var traitPattern = regexp.MustCompile(`^[A-Z0-9_]{1,255}$`)

// validTrait reports whether t is a syntactically valid trait name.
func validTrait(t string) bool { return traitPattern.MatchString(t) }
