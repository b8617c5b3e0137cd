package metadata_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network/metadata"
)

// novaPython returns the interpreter that imports Nova's metadata handler
// (Debian package python3-nova), or skips (fails in CI).
func novaPython(t *testing.T) string {
	t.Helper()
	py := testenv.CloudInitPython // Debian's own python3
	if err := exec.Command(py, "-c", "import nova.api.metadata.handler, webob").Run(); err != nil {
		testenv.Missing(t, "Nova's metadata handler (Debian package python3-nova) is not importable by %s: %v", py, err)
	}
	return py
}

type novaRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	From   string `json:"from"`
	Body   string `json:"body,omitempty"`
}

type novaAnswer struct {
	Status int    `json:"status"`
	CType  string `json:"ctype"`
	Body   []byte `json:"body"`
}

// novaData is an instance's data as the Python side takes it: the same
// config drive tree this service answers from.
func novaData(t *testing.T, in configdrive.Instance, password string) map[string]any {
	t.Helper()
	in.Files, in.AdminPass = nil, ""
	tree, err := configdrive.Build(in)
	require.NoError(t, err)
	decode := func(p string) any {
		var v any
		require.NoError(t, json.Unmarshal(tree[p], &v), p)
		return v
	}
	ec2 := map[string]any{}
	for _, v := range configdrive.EC2Versions {
		ec2[v] = decode("ec2/" + v + "/meta-data.json")
	}
	os := map[string]any{}
	for _, v := range configdrive.OpenStackVersions {
		os[v] = decode("openstack/" + v + "/meta_data.json")
	}
	d := map[string]any{
		"ec2": ec2, "meta_data": os, "network_data": decode("openstack/latest/network_data.json"),
		"vendor": decode("openstack/latest/vendor_data.json"), "password": password, "key_name": "",
	}
	if in.UserData != nil {
		d["user_data"] = base64.StdEncoding.EncodeToString(in.UserData)
	}
	if len(in.Keys) > 0 {
		d["key_name"] = in.Keys[0].Name
	}
	return d
}

// TestAnswersAsNova: for every path an instance or a stranger may ask,
// with the methods Nova treats alike and those it does not, this service
// answers what Nova's own handler answers from the same data: the status
// always, and the type and body of every 200.
func TestAnswersAsNova(t *testing.T) {
	py := novaPython(t)
	s := newService(t)
	h := s.Handler("net1")
	// A has posted a password; B has none.
	require.Equal(t, http.StatusOK, ask(t, h, http.MethodPost, "/openstack/latest/password", "10.0.0.5", "pw").status)

	var paths []string
	paths = append(paths, "/", "/ec2", "/ec2/", "/latest", "/latest/", "/openstack", "/openstack/", "/openstack/content",
		"/openstack/content/0000", "/nosuch", "/2009-04-04", "/2010-01-01/meta-data", "/openstack/2011-01-01",
		"/a/../openstack/./latest", "/openstack/latest/meta_data.json/x", "/openstack/latest/nosuch")
	for _, v := range append(configdrive.OpenStackVersions, configdrive.Latest) {
		paths = append(paths, "/openstack/"+v)
		for _, f := range []string{"meta_data.json", "user_data", "network_data.json", "vendor_data.json", "vendor_data2.json", "password"} {
			paths = append(paths, "/openstack/"+v+"/"+f)
		}
	}
	for _, v := range append(configdrive.EC2Versions, configdrive.Latest) {
		paths = append(paths, "/"+v, "/"+v+"/user-data", "/"+v+"/meta-data", "/"+v+"/meta-data/")
		for _, k := range []string{
			"ami-id", "ami-launch-index", "ami-manifest-path", "instance-id", "hostname", "local-ipv4",
			"reservation-id", "security-groups", "public-keys", "public-keys/0", "public-keys/0/openssh-key",
			"public-keys/0/_name", "public-keys/1", "local-hostname", "public-hostname", "public-ipv4",
			"instance-type", "block-device-mapping", "placement", "placement/availability-zone",
			"instance-action", "nosuch", "hostname/x", "hostname/x/y", "ami-launch-index/x",
			"security-groups/x", "placement/availability-zone/x",
		} {
			paths = append(paths, "/"+v+"/meta-data/"+k, "/ec2/"+v+"/meta-data/"+k)
		}
	}
	var reqs []novaRequest
	for _, p := range paths {
		for _, from := range []string{"10.0.0.5", "10.0.0.6", "10.0.0.7"} {
			reqs = append(reqs, novaRequest{Method: http.MethodGet, Path: p, From: from})
		}
		reqs = append(reqs, novaRequest{Method: http.MethodPut, Path: p, From: "10.0.0.5", Body: "x"})
	}
	// The password: a second post (409), one too large (400), other
	// methods (400). A first post writes Nova's database, which the peer
	// has not: it is tested against this service alone (TestMethods).
	for _, from := range []string{"10.0.0.5", "10.0.0.6"} {
		for _, m := range []string{http.MethodDelete, http.MethodHead, http.MethodPut} {
			reqs = append(reqs, novaRequest{Method: m, Path: "/openstack/latest/password", From: from})
		}
	}
	reqs = append(reqs,
		novaRequest{Method: http.MethodPost, Path: "/openstack/latest/password", From: "10.0.0.5", Body: "again"},
		novaRequest{Method: http.MethodPost, Path: "/openstack/latest/password", From: "10.0.0.6", Body: strings.Repeat("x", metadata.MaxPasswordBytes+1)},
		novaRequest{Method: http.MethodPost, Path: "/openstack/2012-08-10/password", From: "10.0.0.6", Body: "x"},
	)

	in := map[string]any{
		"instances": map[string]any{"10.0.0.5": novaData(t, instA(), "pw"), "10.0.0.6": novaData(t, instB(), "")},
		"requests":  reqs,
	}
	stdin, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), py, "testdata/nova_handler.py")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s", stderr.String())
	var nova []novaAnswer
	require.NoError(t, json.Unmarshal(out, &nova))
	require.Len(t, nova, len(reqs))

	statuses := map[int]int{}
	for i, r := range reqs {
		want := nova[i]
		got := ask(t, h, r.Method, r.Path, r.From, r.Body)
		statuses[want.Status]++
		if !assert.Equal(t, want.Status, got.status, "%s %s from %s", r.Method, r.Path, r.From) || want.Status != http.StatusOK {
			continue
		}
		assert.Equal(t, want.CType, got.ctype, "%s %s", r.Method, r.Path)
		if strings.HasPrefix(want.CType, "application/json") || strings.HasSuffix(r.Path, "network_data.json") {
			assert.JSONEq(t, string(want.Body), got.body, "%s %s", r.Method, r.Path)
			continue
		}
		assert.Equal(t, string(want.Body), got.body, "%s %s from %s", r.Method, r.Path, r.From)
	}
	// The comparison covered every kind of answer.
	for _, st := range []int{200, 400, 404, 409, 500} {
		assert.Positive(t, statuses[st], "no request Nova answers %d", st)
	}
	t.Logf("%d requests, Nova's statuses: %v", len(reqs), statuses)
}
