package main

// mistify-agent's client and rpc types, field for field and tag for tag as
// the steering notes' DESIGN.md (../shared/DESIGN.md) lists them: encoding/json leaves out every
// omitempty field that holds its zero value and writes a nil slice or map
// as null, so what this program answers is what a Go sub-agent puts on the
// wire.

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
	ID       string            `json:"id"`
	Type     string            `json:"type,omitempty"`
	Image    string            `json:"image,omitempty"`
	Nics     []Nic             `json:"nics,omitempty"`
	Disks    []Disk            `json:"disks,omitempty"`
	State    string            `json:"state,omitempty"`
	Memory   uint              `json:"memory,omitempty"`
	CPU      uint              `json:"cpu,omitempty"`
	VNC      int               `json:"vnc,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type GuestCPUMetrics struct {
	CPUTime  float64 `json:"cpu_time"`
	VCPUTime float64 `json:"vcpu_time"`
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
	CPU   []*GuestCPUMetrics           `json:"cpu,omitempty"`
}
