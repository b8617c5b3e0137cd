package metadata_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/metadata"
)

const pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"

func vif(net, ip, mac string) network.VIF {
	a := netip.MustParseAddr(ip)
	return network.VIF{
		ID: "p-" + strings.ReplaceAll(ip, ".", "-") + "-" + net, Address: network.MustParseMAC(mac), Type: network.VIFTypeBridge,
		Bridge: "br0", NetworkID: net,
		Subnets: []network.Subnet{{CIDR: netip.PrefixFrom(a, 24).Masked(), IPs: []netip.Addr{a}, Gateway: netip.MustParseAddr("10.0.0.1")}},
	}
}

// instA has everything; instB nothing optional.
func instA() configdrive.Instance {
	return configdrive.Instance{
		UUID: "a-uuid", Hostname: "vm-a", Meta: map[string]string{"role": "web"},
		UserData: []byte("#cloud-config\nruncmd: [ [ touch, /a ] ]\n"),
		Keys:     []configdrive.Key{{Name: "mykey", Data: pubKey}}, AdminPass: "secret",
		Files:      []configdrive.File{{Path: "/etc/a", Content: []byte("a")}},
		VIFs:       []network.VIF{vif("net1", "10.0.0.5", "02:00:00:00:00:05")},
		VendorData: map[string]any{"v": 1}, RandomSeed: []byte("seed"),
	}
}

func instB() configdrive.Instance {
	return configdrive.Instance{UUID: "b-uuid", Hostname: "vm-b", VIFs: []network.VIF{vif("net1", "10.0.0.6", "02:00:00:00:00:06")}, RandomSeed: []byte("seed")}
}

func newService(t *testing.T, opts ...metadata.Option) *metadata.Service {
	t.Helper()
	s, err := metadata.Open(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Register(t.Context(), instA()))
	require.NoError(t, s.Register(t.Context(), instB()))
	return s
}

type answer struct {
	status int
	ctype  string
	body   string
}

func ask(t *testing.T, h http.Handler, method, path, from string, body ...string) answer {
	t.Helper()
	var r io.Reader
	if len(body) > 0 {
		r = strings.NewReader(body[0])
	}
	req := httptest.NewRequest(method, "http://169.254.169.254"+path, r)
	req.RemoteAddr = net.JoinHostPort(from, "40000")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return answer{w.Code, w.Header().Get("Content-Type"), w.Body.String()}
}

func get(t *testing.T, h http.Handler, path, from string) answer {
	t.Helper()
	return ask(t, h, http.MethodGet, path, from)
}

// TestServesTheConfigDriveTree: every OpenStack file is the config
// drive's, as Nova's service has it (no injected files, no admin
// password), with Nova's types and version rules.
func TestServesTheConfigDriveTree(t *testing.T) {
	s := newService(t)
	h := s.Handler("net1")
	in := instA()
	in.Files, in.AdminPass = nil, ""
	tree, err := configdrive.Build(in)
	require.NoError(t, err)
	for _, v := range append(configdrive.OpenStackVersions, configdrive.Latest) {
		a := get(t, h, "/openstack/"+v+"/meta_data.json", "10.0.0.5")
		require.Equal(t, http.StatusOK, a.status, v)
		assert.Equal(t, "application/json", a.ctype)
		assert.JSONEq(t, string(tree["openstack/"+v+"/meta_data.json"]), a.body, v)
		assert.NotContains(t, a.body, "admin_pass")
		assert.NotContains(t, a.body, `"files"`)
		// Nova serves network_data.json and user_data for every version.
		a = get(t, h, "/openstack/"+v+"/network_data.json", "10.0.0.5")
		assert.Equal(t, http.StatusOK, a.status)
		assert.Equal(t, "text/plain; charset=UTF-8", a.ctype)
		assert.Equal(t, string(tree["openstack/latest/network_data.json"]), a.body)
		a = get(t, h, "/openstack/"+v+"/user_data", "10.0.0.5")
		assert.Equal(t, string(in.UserData), a.body)
	}
	assert.Equal(t, http.StatusNotFound, get(t, h, "/openstack/2013-04-04/vendor_data.json", "10.0.0.5").status)
	a := get(t, h, "/openstack/2013-10-17/vendor_data.json", "10.0.0.5")
	assert.JSONEq(t, `{"v":1}`, a.body)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/openstack/2016-06-30/vendor_data2.json", "10.0.0.5").status)
	assert.JSONEq(t, `{"static":{"v":1}}`, get(t, h, "/openstack/latest/vendor_data2.json", "10.0.0.5").body)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/openstack/content/0000", "10.0.0.5").status, "no injected files over HTTP")

	assert.Equal(t, "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n2017-02-22\n2018-08-27\n2020-10-14\n2025-04-04\nlatest",
		get(t, h, "/openstack", "10.0.0.5").body)
	assert.Equal(t, "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json",
		get(t, h, "/openstack/latest/", "10.0.0.5").body)
	assert.Equal(t, "meta_data.json\nuser_data", get(t, h, "/openstack/2012-08-10", "10.0.0.5").body)
	assert.Equal(t, "meta_data.json\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json",
		get(t, h, "/openstack/latest", "10.0.0.6").body, "B has no user-data")
	for _, p := range []string{"/openstack/2011-01-01/meta_data.json", "/openstack/latest/nosuch", "/openstack/latest/meta_data.json/x"} {
		assert.Equal(t, http.StatusNotFound, get(t, h, p, "10.0.0.5").status, p)
	}
}

// TestFutureVersionsHidden: Nova lists no OpenStack version dated after
// today, and still serves it.
func TestFutureVersionsHidden(t *testing.T) {
	s := newService(t, metadata.WithClock(func() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }))
	h := s.Handler("net1")
	assert.Equal(t, "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n2017-02-22\n2018-08-27\nlatest",
		get(t, h, "/openstack", "10.0.0.5").body)
	assert.Equal(t, http.StatusOK, get(t, h, "/openstack/2025-04-04/meta_data.json", "10.0.0.5").status)
}

// TestEC2Tree: Nova's EC2 paths, listings and leaves, and the statuses
// its lookup ends in.
func TestEC2Tree(t *testing.T) {
	s := newService(t)
	h := s.Handler("net1")
	for path, want := range map[string]string{
		"/":                                 "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest",
		"/ec2":                              "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest",
		"//openstack":                       "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest",
		"/latest":                           "meta-data/\nuser-data",
		"/2009-04-04/":                      "meta-data/\nuser-data",
		"/ec2/latest/meta-data/public-keys": "0=mykey",
		"/latest/meta-data/public-keys/":    "0=mykey",
		"/latest/meta-data/public-keys/0":   "openssh-key",
		"/latest/meta-data/public-keys/0/openssh-key":   strings.TrimSuffix(pubKey, ""),
		"/latest/meta-data/public-keys/0/_name":         "0=mykey",
		"/latest/meta-data/hostname":                    "vm-a",
		"/latest/meta-data/ami-launch-index":            "0",
		"/latest/meta-data/placement":                   "availability-zone",
		"/latest/meta-data/placement/availability-zone": "None",
		"/latest/meta-data/local-ipv4":                  "10.0.0.5",
		"/2009-04-04/user-data":                         "#cloud-config\nruncmd: [ [ touch, /a ] ]\n",
		"/latest/meta-data/../user-data":                "#cloud-config\nruncmd: [ [ touch, /a ] ]\n",
		"/latest/./meta-data/instance-action":           "none",
	} {
		a := get(t, h, path, "10.0.0.5")
		assert.Equal(t, http.StatusOK, a.status, path)
		assert.Equal(t, "text/plain; charset=UTF-8", a.ctype, path)
		assert.Equal(t, want, a.body, path)
	}
	listing := get(t, h, "/latest/meta-data/", "10.0.0.5").body
	assert.True(t, strings.HasPrefix(listing, "ami-id\nami-launch-index\nami-manifest-path\n"), listing)
	assert.Contains(t, listing, "\nplacement/\n")
	assert.Contains(t, listing, "\npublic-keys/\n")
	for path, status := range map[string]int{
		"/latest/meta-data/nosuch":              http.StatusNotFound,
		"/2010-01-01/meta-data":                 http.StatusNotFound,
		"/1.0/meta-data/local-hostname":         http.StatusNotFound, // from 2007-01-19
		"/latest/meta-data/hostname/x":          http.StatusInternalServerError,
		"/latest/meta-data/hostname/x/y":        http.StatusNotFound,
		"/latest/meta-data/ami-launch-index/x":  http.StatusInternalServerError,
		"/latest/meta-data/placement/nosuch":    http.StatusNotFound,
		"/latest/meta-data/public-keys/1":       http.StatusNotFound,
		"/latest/meta-data/public-keys/0/x/y/z": http.StatusNotFound,
	} {
		assert.Equal(t, status, get(t, h, path, "10.0.0.5").status, path)
	}
	// B has no key and no user-data.
	assert.Equal(t, "meta-data/", get(t, h, "/latest", "10.0.0.6").body)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/latest/user-data", "10.0.0.6").status)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/latest/meta-data/public-keys", "10.0.0.6").status)
}

// TestNoInstanceReadsAnother: each address gets its own instance's data,
// an address no instance has on the network gets 404 for every path but
// "/", and the same address on another network is another instance.
func TestNoInstanceReadsAnother(t *testing.T) {
	s := newService(t)
	h := s.Handler("net1")
	assert.Contains(t, get(t, h, "/openstack/latest/meta_data.json", "10.0.0.5").body, `"uuid":"a-uuid"`)
	b := get(t, h, "/openstack/latest/meta_data.json", "10.0.0.6").body
	assert.Contains(t, b, `"uuid":"b-uuid"`)
	assert.NotContains(t, b, "a-uuid")
	for _, p := range []string{"/openstack/latest/user_data", "/latest/user-data", "/latest/meta-data/public-keys/0/openssh-key"} {
		assert.Equal(t, http.StatusNotFound, get(t, h, p, "10.0.0.6").status, "B asks for A's %s", p)
	}
	for _, p := range []string{"/openstack", "/openstack/latest/meta_data.json", "/latest/meta-data/", "/latest", "/ec2"} {
		assert.Equal(t, http.StatusNotFound, get(t, h, p, "10.0.0.7").status, "unknown address, %s", p)
		assert.Equal(t, http.StatusNotFound, get(t, s.Handler("net2"), p, "10.0.0.5").status, "A's address on another network, %s", p)
		assert.Equal(t, http.StatusNotFound, get(t, h, p, "::ffff:10.0.0.8").status)
	}
	assert.Equal(t, http.StatusOK, get(t, h, "/", "10.0.0.7").status, "the version list is everyone's")
	// An IPv4-mapped source is the IPv4 address (a dual-stack socket).
	assert.Contains(t, get(t, h, "/openstack/latest/meta_data.json", "::ffff:10.0.0.5").body, "a-uuid")

	// Another instance on another network with the same address is told apart.
	c := instB()
	c.UUID, c.VIFs = "c-uuid", []network.VIF{vif("net2", "10.0.0.5", "02:00:00:00:00:07")}
	require.NoError(t, s.Register(t.Context(), c))
	assert.Contains(t, get(t, s.Handler("net2"), "/openstack/latest/meta_data.json", "10.0.0.5").body, "c-uuid")
	assert.Contains(t, get(t, h, "/openstack/latest/meta_data.json", "10.0.0.5").body, "a-uuid")
}

// TestMethods: Nova's handler reads a path whatever the method; the
// password takes GET and POST only, once.
func TestMethods(t *testing.T) {
	s := newService(t)
	h := s.Handler("net1")
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead} {
		assert.Equal(t, http.StatusOK, ask(t, h, m, "/openstack/latest/meta_data.json", "10.0.0.5").status, m)
	}
	pw := "/openstack/latest/password"
	a := get(t, h, pw, "10.0.0.5")
	assert.Equal(t, http.StatusOK, a.status)
	assert.Empty(t, a.body)
	assert.Equal(t, http.StatusBadRequest, ask(t, h, http.MethodPut, pw, "10.0.0.5", "x").status)
	assert.Equal(t, http.StatusBadRequest, ask(t, h, http.MethodHead, pw, "10.0.0.5").status)
	assert.Equal(t, http.StatusBadRequest, ask(t, h, http.MethodPost, pw, "10.0.0.5", strings.Repeat("x", metadata.MaxPasswordBytes+1)).status)
	assert.Equal(t, http.StatusOK, ask(t, h, http.MethodPost, pw, "10.0.0.5", "encrypted").status)
	assert.Equal(t, "encrypted", get(t, h, pw, "10.0.0.5").body)
	assert.Equal(t, http.StatusConflict, ask(t, h, http.MethodPost, pw, "10.0.0.5", "again").status)
	assert.Empty(t, get(t, h, pw, "10.0.0.6").body, "B's own password")
	assert.Equal(t, http.StatusNotFound, get(t, h, "/openstack/2012-08-10/password", "10.0.0.5").status)

	// A new registration of A (new metadata) keeps its password.
	in := instA()
	in.Meta = map[string]string{"role": "db"}
	require.NoError(t, s.Register(t.Context(), in))
	assert.Equal(t, "encrypted", get(t, h, pw, "10.0.0.5").body)
	assert.Contains(t, get(t, h, "/openstack/latest/meta_data.json", "10.0.0.5").body, `"role":"db"`)
}

// TestRegister: invalid boot data and a taken address change nothing; a
// new registration moves the instance's addresses; Unregister ends it.
func TestRegister(t *testing.T) {
	s := newService(t)
	h := s.Handler("net1")
	bad := instB()
	bad.UUID = ""
	assert.ErrorIs(t, s.Register(t.Context(), bad), metadata.ErrInvalidInstance)
	taken := instB()
	taken.UUID = "c-uuid"
	taken.VIFs[0].Address = network.MustParseMAC("02:00:00:00:00:09")
	require.ErrorIs(t, s.Register(t.Context(), taken), metadata.ErrAddressInUse)
	assert.Equal(t, []string{"a-uuid", "b-uuid"}, s.Instances())

	moved := instB()
	moved.VIFs = []network.VIF{vif("net1", "10.0.0.9", "02:00:00:00:00:06")}
	require.NoError(t, s.Register(t.Context(), moved))
	assert.Equal(t, http.StatusNotFound, get(t, h, "/openstack", "10.0.0.6").status)
	assert.Contains(t, get(t, h, "/openstack/latest/meta_data.json", "10.0.0.9").body, "b-uuid")
	require.NoError(t, s.Register(t.Context(), taken), "the address is free now")

	require.NoError(t, s.Unregister(t.Context(), "a-uuid"))
	require.NoError(t, s.Unregister(t.Context(), "a-uuid"))
	assert.Equal(t, http.StatusNotFound, get(t, h, "/openstack", "10.0.0.5").status)
	_, ok := s.Instance("a-uuid")
	assert.False(t, ok)
}

// TestStateDir: registrations and passwords outlive the Service.
func TestStateDir(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, metadata.WithStateDir(dir))
	h := s.Handler("net1")
	require.Equal(t, http.StatusOK, ask(t, h, http.MethodPost, "/openstack/latest/password", "10.0.0.5", "pw").status)
	require.NoError(t, s.Unregister(t.Context(), "b-uuid"))
	require.NoError(t, s.Close())

	s2, err := metadata.Open(metadata.WithStateDir(dir))
	require.NoError(t, err)
	defer s2.Close()
	assert.Equal(t, []string{"a-uuid"}, s2.Instances())
	h2 := s2.Handler("net1")
	assert.Equal(t, "pw", get(t, h2, "/openstack/latest/password", "10.0.0.5").body)
	assert.Contains(t, get(t, h2, "/openstack/latest/user_data", "10.0.0.5").body, "touch, /a")
	assert.Equal(t, http.StatusNotFound, get(t, h2, "/openstack", "10.0.0.6").status)
}

// TestControl: another program registers through the control socket.
func TestControl(t *testing.T) {
	s, err := metadata.Open()
	require.NoError(t, err)
	defer s.Close()
	sock := filepath.Join(t.TempDir(), "control.sock")
	_, err = s.ListenControl(t.Context(), sock)
	require.NoError(t, err)
	c := metadata.NewClient(sock)
	defer c.Close()
	require.NoError(t, c.Register(t.Context(), instA()))
	require.NoError(t, c.Register(t.Context(), instB()))
	assert.Equal(t, []string{"a-uuid", "b-uuid"}, s.Instances())
	in, ok := s.Instance("a-uuid")
	require.True(t, ok)
	assert.Equal(t, instA().UserData, in.UserData)
	taken := instB()
	taken.UUID = "c-uuid"
	taken.VIFs[0].Address = network.MustParseMAC("02:00:00:00:00:09")
	assert.ErrorIs(t, c.Register(t.Context(), taken), metadata.ErrAddressInUse)
	bad := instB()
	bad.Hostname = ""
	assert.ErrorIs(t, c.Register(t.Context(), bad), metadata.ErrInvalidInstance)
	require.NoError(t, c.Unregister(t.Context(), "a-uuid"))
	assert.Equal(t, []string{"b-uuid"}, s.Instances())

	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://x/v1/instances/")
	require.NoError(t, err)
	var ids []string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ids))
	resp.Body.Close()
	assert.Equal(t, []string{"b-uuid"}, ids)

	require.NoError(t, s.Close())
	assert.ErrorIs(t, c.Register(t.Context(), instA()), metadata.ErrUnavailable)
}

// TestServe: the service answers on a real listener until closed.
func TestServe(t *testing.T) {
	s := newService(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	l, err := s.Serve(ln, "net1")
	require.NoError(t, err)
	resp, err := http.Get("http://" + l.Addr().String() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get("http://" + l.Addr().String() + "/openstack")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "127.0.0.1 is no instance's")
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	_, err = http.Get("http://" + l.Addr().String() + "/")
	assert.Error(t, err)
}
