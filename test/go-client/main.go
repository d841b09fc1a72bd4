// hk-go-client is a client of the mistify-agent REST API written the way
// mistify's own Go client and cluster manager call the agent: bodies are
// json.Marshal of the Go types (json.Marshal(nil), the body "null", for
// actions), answers are json.Unmarshal'ed into the Go types, jobs are
// polled at /jobs/{id}. The conformance tests run it, one command per step,
// and read what it decoded (re-encoded as JSON) on stdout. It fails (exit
// 1, the reason on stderr) on any answer a Go client could not decode.
//
//	hk-go-client URL create TIMEOUT GUEST_JSON   POST /guests, poll the job, GET the guest
//	hk-go-client URL act ID ACTION TIMEOUT        POST /guests/ID/ACTION (DELETE for delete), poll, GET
//	hk-go-client URL get ID | list | metrics ID | jobs ID
//	hk-go-client URL guest-metadata ID PATCH_JSON | host-metadata PATCH_JSON
//	hk-go-client URL snapshots ID NAME            create, list, get, roll back to and delete NAME (guest off)
//	hk-go-client URL fetch-image ID TIMEOUT       POST /images {"id": ID} as mistify's FetchImage (the agent's imageServer
//	                                              is the source), poll the job, GET /images/ID and GET /images
//
// With HK_TOKEN set, every request carries "Authorization: Bearer $HK_TOKEN".
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	mistify "hyperkern/test/go-mistify"
)

var client = &http.Client{Timeout: 60 * time.Second}

type answer struct {
	Status int
	JobID  string
	Body   []byte
}

func call(method, url string, body interface{}, send bool) answer {
	var reader io.Reader
	if send {
		data, err := json.Marshal(body)
		check(err, "marshal")
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, reader)
	check(err, "request")
	if send {
		req.Header.Set("Content-Type", "application/json")
	}
	// An agent with auth.tokens (mistify's own client sends no token).
	if token := os.Getenv("HK_TOKEN"); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	check(err, method+" "+url)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	check(err, "read body")
	return answer{Status: res.StatusCode, JobID: res.Header.Get("X-Guest-Job-ID"), Body: data}
}

// decode is json.Unmarshal into the Go type, failing as a Go client would.
func decode(a answer, what string, into interface{}) {
	if err := json.Unmarshal(a.Body, into); err != nil {
		fail(fmt.Sprintf("a Go client cannot decode %s (HTTP %d) %s: %v", what, a.Status, a.Body, err))
	}
}

func expectStatus(a answer, what string, statuses ...int) {
	for _, s := range statuses {
		if a.Status == s {
			return
		}
	}
	fail(fmt.Sprintf("%s answered HTTP %d, expected %v: %s", what, a.Status, statuses, a.Body))
}

// waitJob polls GET /jobs/{id} until the job ends, as mistify clients do.
func waitJob(base, id string, timeout time.Duration) mistify.Job {
	deadline := time.Now().Add(timeout)
	for {
		var job mistify.Job
		a := call("GET", base+"/jobs/"+id, nil, false)
		expectStatus(a, "GET /jobs/"+id, 200)
		decode(a, "a Job", &job)
		if job.Status == "Complete" || job.Status == "Error" {
			return job
		}
		if time.Now().After(deadline) {
			fail(fmt.Sprintf("job %s still %s after %s", id, job.Status, timeout))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getGuest(base, id string) (int, *mistify.Guest) {
	a := call("GET", base+"/guests/"+id, nil, false)
	if a.Status == 404 {
		return 404, nil
	}
	expectStatus(a, "GET /guests/"+id, 200)
	var g mistify.Guest
	decode(a, "a Guest", &g)
	return a.Status, &g
}

func seconds(s string) time.Duration {
	n, err := strconv.Atoi(s)
	check(err, "timeout seconds")
	return time.Duration(n) * time.Second
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: hk-go-client URL COMMAND ARGS...")
	}
	base, command, args := os.Args[1], os.Args[2], os.Args[3:]
	out := map[string]interface{}{}
	switch command {
	case "create":
		var guest mistify.Guest
		check(json.Unmarshal([]byte(args[1]), &guest), "guest JSON argument")
		a := call("POST", base+"/guests", guest, true)
		expectStatus(a, "POST /guests", 202)
		var created mistify.Guest
		decode(a, "the created Guest", &created)
		job := waitJob(base, a.JobID, seconds(args[0]))
		_, after := getGuest(base, created.Id)
		wire, _ := json.Marshal(guest)
		out["wire"], out["created"], out["job"], out["guest"] = string(wire), created, job, after
	case "act":
		id, action := args[0], args[1]
		method, url := "POST", base+"/guests/"+id+"/"+action
		if action == "delete" {
			method, url = "DELETE", base+"/guests/"+id
		}
		// mistify's client posts json.Marshal(nil): the 4-byte body null.
		a := call(method, url, nil, true)
		expectStatus(a, method+" "+url, 202)
		var accepted mistify.Guest
		decode(a, "the accepted Guest", &accepted)
		job := waitJob(base, a.JobID, seconds(args[2]))
		status, after := getGuest(base, id)
		out["accepted"], out["job"], out["status"], out["guest"] = accepted, job, status, after
	case "get":
		status, g := getGuest(base, args[0])
		out["status"], out["guest"] = status, g
	case "list":
		var guests []mistify.Guest
		a := call("GET", base+"/guests", nil, false)
		expectStatus(a, "GET /guests", 200)
		decode(a, "a []Guest", &guests)
		out["guests"] = guests
	case "metrics":
		var cpu []*mistify.GuestCpuMetrics
		var nic map[string]*mistify.GuestNicMetrics
		var disk map[string]*mistify.GuestDiskMetrics
		for kind, into := range map[string]interface{}{"cpu": &cpu, "nic": &nic, "disk": &disk} {
			a := call("GET", base+"/guests/"+args[0]+"/metrics/"+kind, nil, false)
			expectStatus(a, "GET metrics/"+kind, 200)
			decode(a, kind+" metrics", into)
		}
		out["cpu"], out["nic"], out["disk"] = cpu, nic, disk
	case "jobs":
		var mine, all []mistify.Job
		a := call("GET", base+"/guests/"+args[0]+"/jobs", nil, false)
		expectStatus(a, "GET /guests/{id}/jobs", 200)
		decode(a, "a []Job", &mine)
		b := call("GET", base+"/jobs", nil, false)
		expectStatus(b, "GET /jobs", 200)
		decode(b, "a []Job", &all)
		out["guestJobs"], out["jobs"] = mine, all
	case "guest-metadata", "host-metadata":
		url, patchArg := base+"/metadata", args[0]
		if command == "guest-metadata" {
			url, patchArg = base+"/guests/"+args[0]+"/metadata", args[1]
		}
		// A Go client holds metadata as map[string]string: "" is its only way to remove a key.
		var patch map[string]string
		check(json.Unmarshal([]byte(patchArg), &patch), "patch JSON argument")
		var patched, read map[string]string
		a := call("PATCH", url, patch, true)
		expectStatus(a, "PATCH "+url, 200)
		decode(a, "a map[string]string", &patched)
		b := call("GET", url, nil, false)
		expectStatus(b, "GET "+url, 200)
		decode(b, "a map[string]string", &read)
		out["patched"], out["read"] = patched, read
	case "snapshots":
		// mistify-agent answered every snapshot route (but download) with 200
		// and the SnapshotResponse's array, once the action was done.
		snaps, name := base+"/guests/"+args[0]+"/snapshots", args[1]
		steps := []struct {
			key, method, url string
			body             interface{}
		}{
			{"created", "POST", snaps, mistify.SnapshotRequest{Dest: name}},
			{"listed", "GET", snaps, nil},
			{"got", "GET", snaps + "/" + name, nil},
			{"rolledBack", "POST", snaps + "/" + name + "/rollback", mistify.SnapshotRequest{}},
			{"deleted", "DELETE", snaps + "/" + name, nil},
			{"after", "GET", snaps, nil},
		}
		for _, step := range steps {
			var answered []mistify.Snapshot
			a := call(step.method, step.url, step.body, step.body != nil)
			expectStatus(a, step.method+" "+step.url, 200)
			decode(a, "a []Snapshot", &answered)
			out[step.key] = answered
		}
	case "fetch-image":
		// As lochness asks for an image before a create: only the id, the
		// agent fetches it from its image server.
		fetchImage(base, mistify.ImageRequest{Id: args[0]}, "", seconds(args[1]), out)
	case "fetch-container-image":
		// A container image: mistify's ImageRequest with type "container" and a source.
		fetchImage(base, mistify.ImageRequest{Id: args[0], Type: "container", Source: args[1]}, "?type=container", seconds(args[2]), out)
	default:
		fail("unknown command " + command)
	}
	check(json.NewEncoder(os.Stdout).Encode(out), "write result")
}

// fetchImage posts the ImageRequest, polls its job to Complete, then reads
// the image and the list (`query` selects the kind); it puts the accepted
// Image, the job, the image and the list in `out`.
func fetchImage(base string, request mistify.ImageRequest, query string, timeout time.Duration, out map[string]interface{}) {
	a := call("POST", base+"/images", request, true)
	expectStatus(a, "POST /images", 202)
	var accepted mistify.Image
	decode(a, "an Image", &accepted)
	job := waitJob(base, a.JobID, timeout)
	if job.Status != "Complete" {
		fail(fmt.Sprintf("fetch job %s ended %s: %s", job.ID, job.Status, job.Message))
	}
	b := call("GET", base+"/images/"+request.Id+query, nil, false)
	expectStatus(b, "GET /images/"+request.Id+query, 200)
	var image mistify.Image
	decode(b, "an Image", &image)
	c := call("GET", base+"/images"+query, nil, false)
	expectStatus(c, "GET /images"+query, 200)
	var listed []mistify.Image
	decode(c, "a []Image", &listed)
	out["accepted"], out["job"], out["image"], out["listed"] = accepted, job, image, listed
}

func check(err error, what string) {
	if err != nil {
		fail(what + ": " + err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, message)
	os.Exit(1)
}
