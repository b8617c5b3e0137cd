package stats

import "time"

// Host is a sample of a compute node's resources, as a scheduler or a
// metrics exporter consumes it. Memory is in MiB, disk in GiB, CPU
// utilisation in percent of all host CPUs (0-100).
type Host struct {
	Time              time.Time `json:"time"`
	Hostname          string    `json:"hostname"`
	HypervisorType    string    `json:"hypervisor_type"`    // "docker"
	HypervisorVersion string    `json:"hypervisor_version"` // engine version
	APIVersion        string    `json:"api_version"`        // engine API version in use

	VCPUs     int `json:"vcpus"`      // CPUs of the host
	VCPUsUsed int `json:"vcpus_used"` // flavor vCPUs of this SDK's instances

	MemoryMB        int64 `json:"memory_mb"`         // host memory
	MemoryUsedMB    int64 `json:"memory_used_mb"`    // host memory in use (total - available)
	MemoryFreeMB    int64 `json:"memory_free_mb"`    // host memory available
	MemoryClaimedMB int64 `json:"memory_claimed_mb"` // memory limits of this SDK's instances

	DiskGB     int64 `json:"disk_gb"`      // size of the engine's data root file system
	DiskUsedGB int64 `json:"disk_used_gb"` // used on it

	CPUUtilization float64       `json:"cpu_utilization"` // percent, over the sampling interval
	LoadAverage    [3]float64    `json:"load_average"`    // 1, 5 and 15 minutes
	Uptime         time.Duration `json:"uptime_ns"`

	Instances map[string]int `json:"instances"` // this SDK's instances by state name
}

// Instance is a sample of one instance's resource usage.
type Instance struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`

	CPUTime    time.Duration `json:"cpu_time_ns"`
	CPUPercent float64       `json:"cpu_percent"` // of one CPU, over the sampling interval

	MemoryBytes      uint64 `json:"memory_bytes"`
	MemoryLimitBytes uint64 `json:"memory_limit_bytes"`

	BlockReadBytes  uint64 `json:"block_read_bytes"`
	BlockWriteBytes uint64 `json:"block_write_bytes"`

	Interfaces []Interface `json:"interfaces"`
}

// Interface holds the counters of one network interface of an instance,
// read inside the instance's network namespace.
type Interface struct {
	PortID    string `json:"port_id,omitempty"` // the VIF ID, for interfaces this SDK plugged
	Device    string `json:"device"`            // name inside the instance
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	TxErrors  uint64 `json:"tx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
}

// AttachPortIDs sets PortID on each interface whose Device is a key of
// portByDevice (device name inside the instance → VIF/port ID). Other
// interfaces, such as "lo", keep an empty PortID.
func AttachPortIDs(ifaces []Interface, portByDevice map[string]string) {
	for i := range ifaces {
		if id, ok := portByDevice[ifaces[i].Device]; ok {
			ifaces[i].PortID = id
		}
	}
}
