package network

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Dispatcher is a VIFDriver that hands each VIF to the driver registered
// for its type, so one backend serves mixed VIFs. Register drivers with
// Handle, as with http.ServeMux. The zero value is an empty Dispatcher
// ready to use; it is safe for concurrent use.
type Dispatcher struct {
	mu      sync.RWMutex
	drivers map[VIFType]VIFDriver
}

var _ VIFDriver = (*Dispatcher)(nil)

// NewDispatcher returns an empty Dispatcher.
func NewDispatcher() *Dispatcher { return &Dispatcher{} }

// Handle registers drv for VIFs of type t. It panics if t is empty, drv is
// nil, or a driver is already registered for t, as http.ServeMux.Handle
// does for a duplicate pattern: these are programming errors.
func (d *Dispatcher) Handle(t VIFType, drv VIFDriver) {
	if t == "" || drv == nil {
		panic("network: Dispatcher.Handle with an empty type or a nil driver")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.drivers[t]; ok {
		panic(fmt.Sprintf("network: Dispatcher.Handle: a driver for %q is already registered", t))
	}
	if d.drivers == nil {
		d.drivers = map[VIFType]VIFDriver{}
	}
	d.drivers[t] = drv
}

// Driver returns the driver registered for t, or an error wrapping
// [ErrUnsupportedVIFType].
func (d *Dispatcher) Driver(t VIFType) (VIFDriver, error) {
	d.mu.RLock()
	drv, ok := d.drivers[t]
	d.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: no driver registered for %q", ErrUnsupportedVIFType, t)
	}
	return drv, nil
}

// Types returns the registered VIF types, sorted.
func (d *Dispatcher) Types() []VIFType {
	d.mu.RLock()
	defer d.mu.RUnlock()
	ts := make([]VIFType, 0, len(d.drivers))
	for t := range d.drivers {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// Plug plugs vif with the driver of its type.
func (d *Dispatcher) Plug(ctx context.Context, instanceID string, vif VIF) error {
	drv, err := d.Driver(vif.Type)
	if err != nil {
		return err
	}
	return drv.Plug(ctx, instanceID, vif)
}

// Attach attaches vif with the driver of its type.
func (d *Dispatcher) Attach(ctx context.Context, instanceID string, vif VIF, target Target) error {
	drv, err := d.Driver(vif.Type)
	if err != nil {
		return err
	}
	return drv.Attach(ctx, instanceID, vif, target)
}

// Detach detaches vif with the driver of its type.
func (d *Dispatcher) Detach(ctx context.Context, instanceID string, vif VIF, target Target) error {
	drv, err := d.Driver(vif.Type)
	if err != nil {
		return err
	}
	return drv.Detach(ctx, instanceID, vif, target)
}

// Unplug unplugs vif with the driver of its type.
func (d *Dispatcher) Unplug(ctx context.Context, instanceID string, vif VIF) error {
	drv, err := d.Driver(vif.Type)
	if err != nil {
		return err
	}
	return drv.Unplug(ctx, instanceID, vif)
}
