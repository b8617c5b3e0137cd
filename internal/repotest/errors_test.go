package repotest

import (
	"errors"
	"go/ast"
	"go/token"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/examples/dvctl/lab"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/busybox"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/osimage"
	"github.com/dockervisor/dockervisor/internal/enginestats"
	"github.com/dockervisor/dockervisor/internal/statestore"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/network/metadata"
	"github.com/dockervisor/dockervisor/network/ovs"
	"github.com/dockervisor/dockervisor/network/secgroup"
	"github.com/dockervisor/dockervisor/pidproc"
	"github.com/dockervisor/dockervisor/placement"
	"github.com/dockervisor/dockervisor/snapshot"
	"github.com/dockervisor/dockervisor/stats/procfs"
)

// sentinels are the exported Err* variables of every package, by
// "import/path.Name". TestEveryErrorHasOneClass finds them in the source,
// so a new one fails until it has its row here (and wraps one class).
var sentinels = map[string]error{
	"configdrive.ErrUserDataTooLarge": configdrive.ErrUserDataTooLarge,
	"configdrive.ErrInvalidPath":      configdrive.ErrInvalidPath,
	"configdrive.ErrInvalidKey":       configdrive.ErrInvalidKey,
	"configdrive.ErrInvalidInstance":  configdrive.ErrInvalidInstance,
	"configdrive.ErrInvalidOption":    configdrive.ErrInvalidOption,

	"errclass.ErrNotFound":          errclass.ErrNotFound,
	"errclass.ErrAlreadyExists":     errclass.ErrAlreadyExists,
	"errclass.ErrInvalidState":      errclass.ErrInvalidState,
	"errclass.ErrInvalidArgument":   errclass.ErrInvalidArgument,
	"errclass.ErrConflict":          errclass.ErrConflict,
	"errclass.ErrResourceExhausted": errclass.ErrResourceExhausted,
	"errclass.ErrUnavailable":       errclass.ErrUnavailable,
	"errclass.ErrNotSupported":      errclass.ErrNotSupported,
	"errclass.ErrCorrupt":           errclass.ErrCorrupt,
	"errclass.ErrGuestFailed":       errclass.ErrGuestFailed,

	"examples/dvctl/lab.ErrInvalid":  lab.ErrInvalid,
	"examples/dvctl/lab.ErrNotFound": lab.ErrNotFound,

	"hypervisor.ErrNotFound":          hypervisor.ErrNotFound,
	"hypervisor.ErrAlreadyExists":     hypervisor.ErrAlreadyExists,
	"hypervisor.ErrInvalidState":      hypervisor.ErrInvalidState,
	"hypervisor.ErrInvalidArgument":   hypervisor.ErrInvalidArgument,
	"hypervisor.ErrConflict":          hypervisor.ErrConflict,
	"hypervisor.ErrResourceExhausted": hypervisor.ErrResourceExhausted,
	"hypervisor.ErrUnavailable":       hypervisor.ErrUnavailable,
	"hypervisor.ErrNotSupported":      hypervisor.ErrNotSupported,
	"hypervisor.ErrCorrupt":           hypervisor.ErrCorrupt,
	"hypervisor.ErrGuestFailed":       hypervisor.ErrGuestFailed,
	"hypervisor.ErrImageNotFound":     hypervisor.ErrImageNotFound,
	"hypervisor.ErrCommandNotFound":   hypervisor.ErrCommandNotFound,
	"hypervisor.ErrNoInit":            hypervisor.ErrNoInit,
	"hypervisor.ErrDegraded":          hypervisor.ErrDegraded,
	"hypervisor.ErrCloudInit":         hypervisor.ErrCloudInit,

	"image.ErrNotFound":          image.ErrNotFound,
	"image.ErrUnsupportedFormat": image.ErrUnsupportedFormat,
	"image.ErrChecksumMismatch":  image.ErrChecksumMismatch,
	"image.ErrUnavailable":       image.ErrUnavailable,
	"image.ErrInvalidArgument":   image.ErrInvalidArgument,
	"image.ErrAlreadyExists":     image.ErrAlreadyExists,
	"image/engine.ErrLoadFailed": engine.ErrLoadFailed,

	"image/osimage.ErrInvalidOptions": osimage.ErrInvalidOptions,
	"image/osimage.ErrBuild":          osimage.ErrBuild,

	"image/busybox.ErrEngine":             busybox.ErrEngine,
	"internal/enginestats.ErrDecode":      enginestats.ErrDecode,
	"internal/statestore.ErrNewerVersion": statestore.ErrNewerVersion,
	"internal/statestore.ErrCorrupt":      statestore.ErrCorrupt,

	"network.ErrUnsupportedVIFType":   network.ErrUnsupportedVIFType,
	"network.ErrInvalidVIF":           network.ErrInvalidVIF,
	"network.ErrDeviceNameTooLong":    network.ErrDeviceNameTooLong,
	"network.ErrInvalidTarget":        network.ErrInvalidTarget,
	"network.ErrNamespaceGone":        network.ErrNamespaceGone,
	"network.ErrDeviceConflict":       network.ErrDeviceConflict,
	"network.ErrKernelFeatureMissing": network.ErrKernelFeatureMissing,
	"network.ErrUnavailable":          network.ErrUnavailable,

	"network/floatingip.ErrInvalidAddress": floatingip.ErrInvalidAddress,
	"network/floatingip.ErrAlreadyBound":   floatingip.ErrAlreadyBound,
	"network/floatingip.ErrNoInterface":    floatingip.ErrNoInterface,

	"network/ovs.ErrUnavailable":    ovs.ErrUnavailable,
	"network/ovs.ErrBridgeNotFound": ovs.ErrBridgeNotFound,
	"network/ovs.ErrPortFailed":     ovs.ErrPortFailed,
	"network/ovs.ErrCommand":        ovs.ErrCommand,

	"network/secgroup.ErrInvalidRule":    secgroup.ErrInvalidRule,
	"network/secgroup.ErrUnknownGroup":   secgroup.ErrUnknownGroup,
	"network/secgroup.ErrGroupInUse":     secgroup.ErrGroupInUse,
	"network/secgroup.ErrInvalidPort":    secgroup.ErrInvalidPort,
	"network/secgroup.ErrPortNotPlugged": secgroup.ErrPortNotPlugged,
	"network/secgroup.ErrNotEnforceable": secgroup.ErrNotEnforceable,

	"placement.ErrInvalidArgument": placement.ErrInvalidArgument,
	"placement.ErrNotFound":        placement.ErrNotFound,
	"placement.ErrConflict":        placement.ErrConflict,
	"placement.ErrAlreadyClaimed":  placement.ErrAlreadyClaimed,
	"placement.ErrNoCandidates":    placement.ErrNoCandidates,
	"placement.ErrUnavailable":     placement.ErrUnavailable,

	"snapshot.ErrInvalidRequest": snapshot.ErrInvalidRequest,
	"stats/procfs.ErrMalformed":  procfs.ErrMalformed,
	"pidproc.ErrNotRunning":      pidproc.ErrNotRunning,

	"network/dhcp.ErrInvalidConfig": dhcp.ErrInvalidConfig,
	"network/dhcp.ErrNotInstalled":  dhcp.ErrNotInstalled,
	"network/dhcp.ErrStart":         dhcp.ErrStart,
	"network/dhcp.ErrNotRunning":    dhcp.ErrNotRunning,

	"network/metadata.ErrUnavailable":     metadata.ErrUnavailable,
	"network/metadata.ErrInvalidInstance": metadata.ErrInvalidInstance,
	"network/metadata.ErrAddressInUse":    metadata.ErrAddressInUse,
	"network/metadata.ErrClosed":          metadata.ErrClosed,
}

// TestEveryErrorHasOneClass finds every exported package-level variable
// named Err* in the repository's source (whatever its build constraints)
// and checks that it is in the table above and wraps exactly one error
// class, so errors.Is(err, hypervisor.ErrNotFound) and the like hold
// from any layer, and dvctl's exit code is never ambiguous.
func TestEveryErrorHasOneClass(t *testing.T) {
	var found []string
	for _, gf := range parseAll(t) {
		if gf.test {
			continue
		}
		for _, d := range gf.f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
						found = append(found, strings.TrimPrefix(strings.TrimPrefix(gf.pkg, module), "/")+"."+n.Name)
					}
				}
			}
		}
	}
	for _, name := range found {
		err, ok := sentinels[name]
		if !assert.True(t, ok, "%s: add it to the sentinels table of this test (and make it wrap one class, with errclass.New)", name) {
			continue
		}
		assert.Len(t, errclass.Matching(err), 1, "%s (%q) wraps exactly one error class", name, err)
	}
	for name := range sentinels {
		assert.True(t, slices.Contains(found, name), "%s is in the table but not in the source", name)
	}
}

// TestHypervisorReexportsEveryClass: package hypervisor re-exports every
// class of package errclass under the same name, as the same value.
func TestHypervisorReexportsEveryClass(t *testing.T) {
	for _, c := range errclass.All() {
		var name string
		for n, err := range sentinels {
			if strings.HasPrefix(n, "errclass.") && err == c.Err {
				name = strings.TrimPrefix(n, "errclass.")
			}
		}
		assert.NotEmpty(t, name, "class %s has its errclass variable", c.Name)
		assert.Equal(t, c.Err, sentinels["hypervisor."+name], "hypervisor.%s is errclass.%s", name, name)
	}
}

// TestClassesHoldAcrossLayers: a not-found (or unavailable...) from any
// package is the hypervisor package's class too.
func TestClassesHoldAcrossLayers(t *testing.T) {
	for class, errs := range map[error][]error{
		hypervisor.ErrNotFound:        {image.ErrNotFound, placement.ErrNotFound, hypervisor.ErrImageNotFound, hypervisor.ErrCommandNotFound, lab.ErrNotFound},
		hypervisor.ErrUnavailable:     {image.ErrUnavailable, network.ErrUnavailable, ovs.ErrUnavailable, placement.ErrUnavailable},
		hypervisor.ErrInvalidArgument: {image.ErrInvalidArgument, network.ErrInvalidVIF, network.ErrDeviceNameTooLong, secgroup.ErrInvalidPort, configdrive.ErrInvalidKey, snapshot.ErrInvalidRequest},
		hypervisor.ErrNotSupported:    {network.ErrKernelFeatureMissing, secgroup.ErrNotEnforceable},
		hypervisor.ErrAlreadyExists:   {image.ErrAlreadyExists, floatingip.ErrAlreadyBound, placement.ErrAlreadyClaimed},
	} {
		for _, err := range errs {
			assert.ErrorIs(t, err, class, "%q", err)
		}
	}
	assert.ErrorIs(t, network.ErrKernelFeatureMissing, errors.ErrUnsupported)
	assert.ErrorIs(t, &network.KernelFeatureError{Feature: "VLAN"}, hypervisor.ErrNotSupported)
}
