// Package mistify holds the wire types of mistify-agent's client and rpc
// packages, field for field and tag for tag as the steering notes'
// DESIGN.md (../shared/DESIGN.md) lists them, with mistify's own Go names
// (Id, Cpu, GuestCpuMetrics). Both Go programs of the tests use them: the
// client (../go-client), whose requests encoding/json writes from these
// (every field without omitempty, zero values included) as real Go clients
// do, and whose decoding of the answers applies Go's type checks (a uint
// never holds -1 or 1.5, a map[string]string never holds a number); and the
// sub-agent (../go-subagent), whose answers leave out every omitempty field
// holding its zero value and write a nil slice or map as null, as a Go
// sub-agent does.
package mistify

import "time"

type Nic struct {
	Name    string `json:"name,omitempty"`
	Network string `json:"network"`
	Model   string `json:"model"`
	Mac     string `json:"mac,omitempty"`
	Address string `json:"address"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
	Device  string `json:"device,omitempty"`
	VLANs   []int  `json:"vlans"`
}

type Disk struct {
	Bus    string `json:"bus"`
	Device string `json:"device"`
	Size   uint64 `json:"size"`
	Volume string `json:"volume"`
	Image  string `json:"image"`
	Source string `json:"source"`
}

type Guest struct {
	Id       string            `json:"id"`
	Type     string            `json:"type,omitempty"`
	Image    string            `json:"image,omitempty"`
	Nics     []Nic             `json:"nics,omitempty"`
	Disks    []Disk            `json:"disks,omitempty"`
	State    string            `json:"state,omitempty"`
	Memory   uint              `json:"memory,omitempty"`
	Cpu      uint              `json:"cpu,omitempty"`
	VNC      int               `json:"vnc,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type GuestCpuMetrics struct {
	CpuTime  float64 `json:"cpu_time"`
	VcpuTime float64 `json:"vcpu_time"`
}

type GuestDiskMetrics struct {
	Disk       string  `json:"disk"`
	ReadOps    int64   `json:"read_ops"`
	ReadBytes  int64   `json:"read_bytes"`
	ReadTime   float64 `json:"read_time"`
	WriteOps   int64   `json:"write_ops"`
	WriteBytes int64   `json:"write_bytes"`
	WriteTime  float64 `json:"write_time"`
	FlushOps   int64   `json:"flush_ops"`
	FlushTime  float64 `json:"flush_time"`
}

type GuestNicMetrics struct {
	Name      string `json:"name"`
	RxBytes   int64  `json:"rx_bytes"`
	RxPackets int64  `json:"rx_packets"`
	RxErrors  int64  `json:"rx_errors"`
	RxDrops   int64  `json:"rx_drops"`
	TxBytes   int64  `json:"tx_bytes"`
	TxPackets int64  `json:"tx_packets"`
	TxErrors  int64  `json:"tx_errors"`
	TxDrops   int64  `json:"tx_drops"`
}

// Job has no JSON tags in mistify, so its fields go by their Go names.
type Job struct {
	ID        string
	GuestID   string
	Action    string
	QueuedAt  time.Time
	StartedAt time.Time
	UpdatedAt time.Time
	Status    string
	Message   string
}

type Snapshot struct {
	Id   string `json:"id"`
	Size uint64 `json:"size"`
}

type SnapshotRequest struct {
	Id                string `json:"id"`
	Dest              string `json:"dest"`
	Recursive         bool   `json:"recursive"`
	DestroyMoreRecent bool   `json:"destroyMoreRecent"`
}

type Image struct {
	Id       string `json:"id"`
	Type     string `json:"type"`
	Volume   string `json:"volume,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Size     uint64 `json:"size"`
	Status   string `json:"status,omitempty"`
}

type ImageRequest struct {
	Id     string `json:"id"`
	Type   string `json:"type"`
	Dest   string `json:"dest"`
	Source string `json:"source"`
}

// rpc.GuestRequest and rpc.GuestResponse.
type GuestRequest struct {
	Guest  *Guest            `json:"guest"`
	Action string            `json:"action"`
	Args   map[string]string `json:"args,omitempty"`
}

type GuestResponse struct {
	Guest   *Guest `json:"guest"`
	Message string `json:"message,omitempty"`
	Retry   int    `json:"retry,omitempty"`
}

// rpc.GuestMetricsRequest and rpc.GuestMetricsResponse.
type GuestMetricsRequest struct {
	Guest *Guest            `json:"guest"`
	Type  string            `json:"type"`
	Args  map[string]string `json:"args,omitempty"`
}

type GuestMetricsResponse struct {
	Guest *Guest                       `json:"guest"`
	Type  string                       `json:"type"`
	Disk  map[string]*GuestDiskMetrics `json:"disk,omitempty"`
	Nic   map[string]*GuestNicMetrics  `json:"nic,omitempty"`
	CPU   []*GuestCpuMetrics           `json:"cpu,omitempty"`
}
