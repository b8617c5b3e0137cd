package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/glance"
	"github.com/dockervisor/dockervisor/image/localdir"
)

// errNoStore is returned by image commands when no store is configured.
var errNoStore = usageError{errors.New("no image store: set --image-dir DIR (DVCTL_IMAGE_DIR) or --glance URL (DVCTL_GLANCE_URL), or --store glance with OS_CLOUD or the OS_* variables")}

// storeIfAny returns the configured image store, or nil when none is.
func (a *app) storeIfAny() (image.Store, error) {
	if a.st != nil {
		return a.st, nil
	}
	kind := a.g.store
	if kind == "" {
		switch {
		case a.g.imageDir != "":
			kind = "local"
		case a.g.glance != "":
			kind = "glance"
		default:
			return nil, nil
		}
	}
	var (
		st  image.Store
		err error
	)
	switch kind {
	case "local":
		if a.g.imageDir == "" {
			return nil, usageError{errors.New("--store local needs --image-dir (DVCTL_IMAGE_DIR)")}
		}
		st, err = localdir.New(a.g.imageDir)
	case "glance":
		st, err = a.glanceStore(a.ctx)
	default:
		return nil, usageError{fmt.Errorf("--store %q: want local or glance", kind)}
	}
	if err != nil {
		return nil, err
	}
	a.st = st
	return st, nil
}

// store returns the configured image store or a usage error.
func (a *app) store() (image.Store, error) {
	st, err := a.storeIfAny()
	if err == nil && st == nil {
		err = errNoStore
	}
	return st, err
}

// glanceStore connects to Glance: without keystone at --glance, else through
// keystone with clouds.yaml (--os-cloud, OS_CLOUD) or the OS_* variables,
// using gophercloud's own configuration helpers.
func (a *app) glanceStore(ctx context.Context) (image.Store, error) {
	if a.g.glance != "" {
		return glance.NewNoAuth(a.g.glance)
	}
	var (
		pc  *gophercloud.ProviderClient
		eo  gophercloud.EndpointOpts
		err error
	)
	if a.g.osCloud != "" {
		ao, eopts, tlsCfg, perr := clouds.Parse(clouds.WithCloudName(a.g.osCloud))
		if perr != nil {
			return nil, fmt.Errorf("%w: clouds.yaml: %w", image.ErrInvalidArgument, perr)
		}
		eo = eopts
		pc, err = config.NewProviderClient(ctx, ao, config.WithTLSConfig(tlsCfg))
	} else {
		ao, aerr := openstack.AuthOptionsFromEnv()
		if aerr != nil {
			return nil, usageError{fmt.Errorf("glance: %w", aerr)}
		}
		eo = gophercloud.EndpointOpts{Region: os.Getenv("OS_REGION_NAME")}
		pc, err = openstack.AuthenticatedClient(ctx, ao)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: keystone: %w", image.ErrUnavailable, err)
	}
	sc, err := openstack.NewImageV2(pc, eo)
	if err != nil {
		return nil, fmt.Errorf("%w: glance endpoint: %w", image.ErrUnavailable, err)
	}
	return glance.New(sc)
}
