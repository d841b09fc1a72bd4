// A mistify sub-agent in Go, for the tests: mistify-agent-libvirt's method
// names (Libvirt.Create, Start/Run, Shutdown, Reboot, Restart, Poweroff,
// Suspend, Resume, Delete, CPUMetrics, NicMetrics, DiskMetrics) served as
// JSON-RPC 1.0 over HTTP POST /_mistify_RPC_, the way gorilla/rpc's json
// codec serves them, over an in-memory set of "domains". Every answer is
// encoded by encoding/json from mistify's structs (../go-mistify, shared
// with the Go client), so omitempty fields holding their zero value are
// absent and nil slices and maps are null: exactly what hyperkern gets from
// a real Go sub-agent.
//
// States are libvirt's names as mistify-agent-libvirt reports them
// (running, paused, shutdown, shutoff, ...). A guest whose metadata holds
// "gosub.answer": "new-guest" is answered with a Guest built afresh holding
// only its id and state, as mistify's example sub-agent answers its
// container methods.
//
// Usage: go-subagent (listens on 127.0.0.1, any free port, and prints
// "listening on 127.0.0.1:PORT"); it exits when its stdin closes, so it
// never outlives the test that started it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	mistify "hyperkern/test/go-mistify"
)

type domain struct {
	state   string
	vnc     int
	cpuTime float64
	io      int64
}

type subAgent struct {
	mu      sync.Mutex
	domains map[string]*domain
	nextVNC int
	calls   []string
}

type rpcRequest struct {
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	ID     *json.RawMessage  `json:"id"`
}

type rpcResponse struct {
	Result interface{}      `json:"result"`
	Error  interface{}      `json:"error"`
	ID     *json.RawMessage `json:"id"`
}

var guestMethods = map[string]func(*subAgent, *mistify.Guest, *domain) (string, error){
	"Start":    start,
	"Run":      start,
	"Shutdown": func(s *subAgent, g *mistify.Guest, d *domain) (string, error) { return s.to(d, "shutdown", "running") },
	"Reboot":   func(s *subAgent, g *mistify.Guest, d *domain) (string, error) { return s.to(d, "running", "running") },
	"Restart": func(s *subAgent, g *mistify.Guest, d *domain) (string, error) {
		return s.to(d, "running", "running", "paused")
	},
	"Poweroff": func(s *subAgent, g *mistify.Guest, d *domain) (string, error) {
		return s.to(d, "shutoff", "running", "paused", "shutdown", "crashed")
	},
	"Suspend": func(s *subAgent, g *mistify.Guest, d *domain) (string, error) { return s.to(d, "paused", "running") },
	"Resume":  func(s *subAgent, g *mistify.Guest, d *domain) (string, error) { return s.to(d, "running", "paused") },
}

func start(s *subAgent, g *mistify.Guest, d *domain) (string, error) {
	if d.state == "running" {
		return "already running", nil
	}
	return s.to(d, "running", "shutoff", "shutdown", "paused", "crashed")
}

// to moves a domain to state `next` if it is in one of `from`; a running
// domain has a VNC port, any other none (VNC 0: left out of the answer).
func (s *subAgent) to(d *domain, next string, from ...string) (string, error) {
	ok := false
	for _, f := range from {
		ok = ok || d.state == f
	}
	if !ok {
		return "", fmt.Errorf("Requested operation is not valid: domain is %s", d.state)
	}
	d.state = next
	if next == "running" && d.vnc == 0 {
		s.nextVNC++
		d.vnc = 5900 + s.nextVNC
	} else if next != "running" && next != "paused" {
		d.vnc = 0
	}
	return "", nil
}

func (s *subAgent) lookup(g *mistify.Guest) (*domain, error) {
	if g == nil || g.Id == "" {
		return nil, errors.New("invalid argument")
	}
	d, ok := s.domains[g.Id]
	if !ok {
		return nil, fmt.Errorf("Domain not found: no domain with matching name '%s'", g.Id)
	}
	return d, nil
}

// answer is the guest as this sub-agent sends it back.
func answer(g *mistify.Guest, d *domain) *mistify.Guest {
	if g.Metadata["gosub.answer"] == "new-guest" {
		return &mistify.Guest{Id: g.Id, State: d.state}
	}
	g.State = d.state
	g.VNC = d.vnc
	return g
}

func (s *subAgent) guestCall(name string, raw json.RawMessage) (interface{}, error) {
	var request mistify.GuestRequest
	if err := json.Unmarshal(raw, &request); err != nil {
		return nil, err
	}
	g := request.Guest
	switch name {
	case "Create":
		if g == nil || g.Id == "" {
			return nil, errors.New("invalid argument")
		}
		if _, taken := s.domains[g.Id]; taken {
			return nil, fmt.Errorf("operation failed: domain '%s' already exists", g.Id)
		}
		// Defines the domain and boots it, as mistify-agent-libvirt's Create does.
		d := &domain{state: "shutoff"}
		s.domains[g.Id] = d
		for i := range g.Nics {
			if g.Nics[i].Device == "" {
				g.Nics[i].Device = fmt.Sprintf("vnet%d", i)
			}
			// Read back from the domain, as mistify-agent-libvirt does: no VLANs is a nil slice, sent as null.
			if len(g.Nics[i].VLANs) == 0 {
				g.Nics[i].VLANs = nil
			}
		}
		for i := range g.Disks {
			if g.Disks[i].Source == "" {
				g.Disks[i].Source = fmt.Sprintf("/dev/zvol/guests/%s/disk-%d", g.Id, i)
			}
		}
		s.to(d, "running", "shutoff")
		return mistify.GuestResponse{Guest: answer(g, d)}, nil
	case "Delete":
		d, err := s.lookup(g)
		if err != nil {
			return nil, err
		}
		delete(s.domains, g.Id)
		d.state = "shutoff"
		return mistify.GuestResponse{Guest: answer(g, d)}, nil
	}
	method, ok := guestMethods[name]
	if !ok {
		return nil, errNoMethod
	}
	d, err := s.lookup(g)
	if err != nil {
		return nil, err
	}
	message, err := method(s, g, d)
	if err != nil {
		return nil, err
	}
	return mistify.GuestResponse{Guest: answer(g, d), Message: message}, nil
}

func (s *subAgent) metricsCall(name string, raw json.RawMessage) (interface{}, error) {
	var request mistify.GuestMetricsRequest
	if err := json.Unmarshal(raw, &request); err != nil {
		return nil, err
	}
	d, err := s.lookup(request.Guest)
	if err != nil {
		return nil, err
	}
	g := request.Guest
	response := mistify.GuestMetricsResponse{Guest: g, Type: request.Type}
	d.cpuTime += 1.5
	d.io += 4096
	switch name {
	case "CPUMetrics":
		// One per vCPU; a guest with no vCPUs gets a nil slice, so no "cpu" at all.
		for i := uint(0); i < g.Cpu; i++ {
			response.CPU = append(response.CPU, &mistify.GuestCpuMetrics{CpuTime: d.cpuTime, VcpuTime: d.cpuTime - 0.5})
		}
	case "NicMetrics":
		for _, nic := range g.Nics {
			if response.Nic == nil {
				response.Nic = map[string]*mistify.GuestNicMetrics{}
			}
			response.Nic[nic.Name] = &mistify.GuestNicMetrics{Name: nic.Name, RxBytes: d.io, RxPackets: d.io / 512, TxBytes: d.io / 2}
		}
	case "DiskMetrics":
		for _, disk := range g.Disks {
			if response.Disk == nil {
				response.Disk = map[string]*mistify.GuestDiskMetrics{}
			}
			response.Disk[disk.Device] = &mistify.GuestDiskMetrics{Disk: disk.Device, ReadOps: d.io / 4096, ReadBytes: d.io, WriteBytes: d.io / 2}
		}
	default:
		return nil, errNoMethod
	}
	return response, nil
}

var errNoMethod = errors.New("no such method")

func (s *subAgent) serveRPC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "rpc: POST method required, received "+r.Method, http.StatusMethodNotAllowed)
		return
	}
	var request rpcRequest
	if err := json.NewDecoder(r.Body).Decode(&request); err != nil || len(request.Params) != 1 {
		http.Error(w, fmt.Sprintf("rpc: bad request: %v", err), http.StatusBadRequest)
		return
	}
	service, name, _ := strings.Cut(request.Method, ".")
	s.mu.Lock()
	s.calls = append(s.calls, request.Method)
	var result interface{}
	var err error = errNoMethod
	if service == "Libvirt" {
		if strings.HasSuffix(name, "Metrics") {
			result, err = s.metricsCall(name, request.Params[0])
		} else {
			result, err = s.guestCall(name, request.Params[0])
		}
	}
	s.mu.Unlock()
	if err == errNoMethod {
		http.Error(w, fmt.Sprintf("rpc: can't find method %q", request.Method), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	response := rpcResponse{Result: result, ID: request.ID}
	if err != nil {
		response = rpcResponse{Result: nil, Error: err.Error(), ID: request.ID}
	}
	json.NewEncoder(w).Encode(response)
}

// serveCalls lists the methods called so far, for the test's assertions.
func (s *subAgent) serveCalls(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.calls)
}

func main() {
	s := &subAgent{domains: map[string]*domain{}}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_mistify_RPC_", s.serveRPC)
	mux.HandleFunc("/_calls", s.serveCalls)
	fmt.Printf("listening on %s\n", listener.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	if err := http.Serve(listener, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
