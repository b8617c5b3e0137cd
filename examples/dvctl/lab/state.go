package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

// State is a lab's state file: every resource an Up made or was about to
// make, recorded before it is made, so that Down finds it whatever happened.
type State struct {
	Name       string   `json:"name"`
	File       string   `json:"file,omitempty"`      // the lab file Up read last
	Instances  []string `json:"instances"`           // instance IDs
	Netns      string   `json:"netns,omitempty"`     // the lab's host namespace, under /run/netns
	ExtNetns   string   `json:"ext_netns,omitempty"` // the lab's external namespace, under /run/netns
	OVSDir     string   `json:"ovs_dir,omitempty"`   // run directory of the lab's private Open vSwitch
	OVSBridges []string `json:"ovs_bridges,omitempty"`

	// The firewall's intended state: every process that plugs or unplugs
	// a port of the lab syncs its Firewall from it first.
	Groups []secgroup.Group `json:"security_groups,omitempty"`
	Ports  []secgroup.Port  `json:"filtered_ports,omitempty"`
	// FloatingIPs are the bindings Up made or was about to make.
	FloatingIPs []floatingip.Binding `json:"floating_ips,omitempty"`
	// Services are the service namespaces (DHCP server, metadata) of the
	// networks with dhcp; MetadataDir is the run directory of the lab's
	// metadata service.
	Services    []Service `json:"services,omitempty"`
	MetadataDir string    `json:"metadata_dir,omitempty"`

	mu   sync.Mutex
	path string
}

// StatePath returns where the state of lab name lives under dir.
func StatePath(dir, name string) string { return filepath.Join(dir, name+".json") }

// LoadState reads the state of lab name under dir. A missing file is an
// empty state, and found is false.
func LoadState(dir, name string) (st *State, found bool, err error) {
	st = &State{Name: name, path: StatePath(dir, name)}
	b, err := os.ReadFile(st.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, false, fmt.Errorf("lab state %s: %w", st.path, err)
	}
	st.path = StatePath(dir, name)
	return st, true, nil
}

// ListStates returns the names of the labs with a state file under dir.
func ListStates(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range m {
		names = append(names, filepath.Base(p[:len(p)-len(".json")]))
	}
	slices.Sort(names)
	return names, nil
}

// AddInstance records an instance ID and writes the state.
func (s *State) AddInstance(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.Instances, id) {
		return nil
	}
	s.Instances = append(s.Instances, id)
	return s.saveLocked()
}

// RemoveInstance forgets an instance ID and writes the state.
func (s *State) RemoveInstance(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.Instances, id)
	if i < 0 {
		return nil
	}
	s.Instances = slices.Delete(s.Instances, i, i+1)
	return s.saveLocked()
}

// SetNetns records the lab's host namespace and writes the state.
func (s *State) SetNetns(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Netns = name
	return s.saveLocked()
}

// Update changes the state with fn and writes it.
func (s *State) Update(fn func(*State)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
	return s.saveLocked()
}

// port returns the filtered port id.
func (s *State) port(id string) (secgroup.Port, bool) {
	for _, p := range s.Ports {
		if p.ID == id {
			return p, true
		}
	}
	return secgroup.Port{}, false
}

// Save writes the state atomically.
func (s *State) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked()
}

func (s *State) saveLocked() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	slices.Sort(s.Instances)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".lab-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Remove deletes the state file; a missing one is no error.
func (s *State) Remove() error {
	err := os.Remove(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
