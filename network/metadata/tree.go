package metadata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/configdrive"
)

// Content types, as Nova's service sets them (webob adds the charset to
// text types).
const (
	textPlain = "text/plain; charset=UTF-8"
	appJSON   = "application/json"
	textHTML  = "text/html; charset=UTF-8"
)

// MaxPasswordBytes is the largest password an instance may post: Nova's
// four chunks of 255 bytes.
const MaxPasswordBytes = 4 * 255

// ec2Latest is the EC2 version "latest" stands for; osLatest the
// OpenStack one.
var (
	ec2Latest = configdrive.EC2Versions[len(configdrive.EC2Versions)-1]
	osLatest  = configdrive.OpenStackVersions[len(configdrive.OpenStackVersions)-1]
)

// OpenStack versions from which a file exists (nova/api/metadata/base.py).
const (
	osGrizzly   = "2013-04-04"
	osHavana    = "2013-10-17"
	osLiberty   = "2015-10-15"
	osNewtonTwo = "2016-10-06"
)

// instanceData is what the service answers for one instance: the tree of
// its config drive, as Nova's service serves it over HTTP.
type instanceData struct {
	uuid     string
	userData []byte            // nil: none
	osFiles  map[string][]byte // by OpenStack version, then file name: "2012-08-10/meta_data.json"
	network  []byte            // network_data.json, served for every version as Nova does
	vendor   []byte
	vendor2  []byte
	ec2      map[string]any // by EC2 version: {"meta-data": {...}, "user-data": bytes}
}

// forHTTP is what Nova's service knows of an instance that its config
// drive knows more of: the injected files and the admin password are
// passed to the config drive only (nova/api/metadata/base.py: "we
// shouldn't pass that to external services").
func forHTTP(in configdrive.Instance) configdrive.Instance {
	in.Files = nil
	in.AdminPass = ""
	return in
}

// buildData lays out in's tree with package configdrive and reads it into
// the form the service answers from.
func buildData(in configdrive.Instance) (*instanceData, error) {
	tree, err := configdrive.Build(forHTTP(in))
	if err != nil {
		return nil, err
	}
	d := &instanceData{uuid: in.UUID, osFiles: map[string][]byte{}, ec2: map[string]any{}}
	if in.UserData != nil {
		d.userData = in.UserData
	}
	for _, v := range configdrive.OpenStackVersions {
		for _, f := range []string{"meta_data.json", "vendor_data.json", "vendor_data2.json"} {
			if b, ok := tree["openstack/"+v+"/"+f]; ok {
				d.osFiles[v+"/"+f] = b
			}
		}
	}
	d.network = tree["openstack/"+configdrive.Latest+"/network_data.json"]
	d.vendor = tree["openstack/"+configdrive.Latest+"/vendor_data.json"]
	d.vendor2 = tree["openstack/"+configdrive.Latest+"/vendor_data2.json"]
	keyName := ""
	if len(in.Keys) > 0 {
		keyName = in.Keys[0].Name
		if keyName == "" {
			keyName = "key-0"
		}
	}
	for _, v := range configdrive.EC2Versions {
		raw, ok := tree["ec2/"+v+"/meta-data.json"]
		if !ok {
			return nil, fmt.Errorf("metadata: the config drive has no EC2 version %s", v)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var md map[string]any
		if err := dec.Decode(&md); err != nil {
			return nil, fmt.Errorf("metadata: EC2 %s: %w", v, err)
		}
		// The service lists a key as "0=<key name>", which the config
		// drive leaves out.
		if pk, ok := md["public-keys"].(map[string]any); ok {
			if k0, ok := pk["0"].(map[string]any); ok {
				k0["_name"] = "0=" + keyName
			}
		}
		top := map[string]any{"meta-data": md}
		if d.userData != nil {
			top["user-data"] = d.userData
		}
		d.ec2[v] = top
	}
	return d, nil
}

// response is an answer: a status, and for 200 a body and its type.
type response struct {
	status int
	ctype  string
	body   []byte
}

func ok(ctype string, body []byte) response {
	return response{status: http.StatusOK, ctype: ctype, body: body}
}

var (
	notFound    = response{status: http.StatusNotFound}
	serverError = response{status: http.StatusInternalServerError}
)

// listing is ec2_md_print of a list.
func listing(items []string) response { return ok(textPlain, []byte(strings.Join(items, "\n"))) }

// ec2Listing is the answer to "/": the EC2 versions and "latest".
func ec2Listing() response {
	return listing(append(slices.Clone(configdrive.EC2Versions), configdrive.Latest))
}

// osVersions is the OpenStack version listing: the versions not in the
// future (Nova hides those), and "latest".
func osVersions(now time.Time) response {
	today := now.UTC().Format("2006-01-02")
	var vs []string
	for _, v := range configdrive.OpenStackVersions {
		if v <= today {
			vs = append(vs, v)
		}
	}
	return listing(append(vs, configdrive.Latest))
}

// normpath is Python's posixpath.normpath, which Nova's lookup applies.
func normpath(p string) string {
	if p == "" {
		return "."
	}
	initial := 0
	if strings.HasPrefix(p, "/") {
		initial = 1
		// POSIX allows exactly two leading slashes to mean something else.
		if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
			initial = 2
		}
	}
	var out []string
	for _, c := range strings.Split(p, "/") {
		switch {
		case c == "" || c == ".":
		case c != ".." || (initial == 0 && len(out) == 0) || (len(out) > 0 && out[len(out)-1] == ".."):
			out = append(out, c)
		case len(out) > 0:
			out = out[:len(out)-1]
		}
	}
	s := strings.Repeat("/", initial) + strings.Join(out, "/")
	if s == "" {
		return "."
	}
	return s
}

// lookup answers a request for path, as InstanceMetadata.lookup does.
// Password requests are answered by the caller (it holds the password);
// lookup reports them with isPassword.
func (d *instanceData) lookup(path string, now time.Time) (r response, isPassword bool) {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	path = normpath(path)
	tokens := strings.Split(path, "/")[1:]
	if tokens[0] != "ec2" && tokens[0] != "openstack" {
		if tokens[0] == "" {
			tokens = []string{"ec2"}
		} else {
			tokens = append([]string{"ec2"}, tokens...)
		}
	}
	if len(tokens) == 1 {
		if tokens[0] == "openstack" {
			return osVersions(now), false
		}
		return ec2Listing(), false
	}
	if tokens[0] == "openstack" {
		return d.openstack(tokens[1:])
	}
	return d.ec2Item(tokens[1:]), false
}

// openstack answers /openstack/<version>[/<file>].
func (d *instanceData) openstack(tokens []string) (response, bool) {
	if tokens[0] == "content" {
		// Injected files are the config drive's only: Nova's service has
		// no content.
		return notFound, false
	}
	v := tokens[0]
	if v == configdrive.Latest {
		v = osLatest
	}
	if !slices.Contains(configdrive.OpenStackVersions, v) {
		return notFound, false
	}
	atLeast := func(min string) bool {
		return slices.Index(configdrive.OpenStackVersions, v) >= slices.Index(configdrive.OpenStackVersions, min)
	}
	if len(tokens) == 1 {
		files := []string{"meta_data.json"}
		if d.userData != nil {
			files = append(files, "user_data")
		}
		if atLeast(osGrizzly) {
			files = append(files, "password")
		}
		if atLeast(osHavana) {
			files = append(files, "vendor_data.json")
		}
		if atLeast(osLiberty) {
			files = append(files, "network_data.json")
		}
		if atLeast(osNewtonTwo) {
			files = append(files, "vendor_data2.json")
		}
		return listing(files), false
	}
	switch strings.Join(tokens[1:], "/") {
	case "meta_data.json":
		return ok(appJSON, d.osFiles[v+"/meta_data.json"]), false
	case "user_data":
		if d.userData == nil {
			return notFound, false
		}
		return ok(textPlain, d.userData), false
	case "network_data.json":
		return ok(textPlain, d.network), false // Nova checks no version here, nor sets a JSON type
	case "vendor_data.json":
		if !atLeast(osHavana) {
			return notFound, false
		}
		return ok(appJSON, d.vendor), false
	case "vendor_data2.json":
		if !atLeast(osNewtonTwo) {
			return notFound, false
		}
		return ok(appJSON, d.vendor2), false
	case "password":
		if !atLeast(osGrizzly) {
			return notFound, false
		}
		return response{}, true
	}
	return notFound, false
}

// ec2Item answers /<version>/..., as get_ec2_item and find_path_in_tree
// do, including their failures: a token under a leaf is a 500 when it is
// the last one (Python indexes the leaf and raises TypeError) and a 404
// otherwise; a list element named as a key is a 500 too.
func (d *instanceData) ec2Item(tokens []string) response {
	v := tokens[0]
	if v == configdrive.Latest {
		v = ec2Latest
	}
	data, ok := d.ec2[v]
	if !ok {
		return notFound
	}
	rest := tokens[1:]
	for i, tok := range rest {
		switch n := data.(type) {
		case map[string]any:
			next, found := n[tok]
			if !found {
				return notFound
			}
			data = next
		case []any:
			if slices.ContainsFunc(n, func(e any) bool { s, ok := e.(string); return ok && s == tok }) {
				return serverError // list indices must be integers
			}
			return notFound
		default:
			if i != len(rest)-1 {
				return notFound
			}
			return serverError // a string, number or None indexed by a string
		}
	}
	return ec2Print(data)
}

// ec2Print is ec2_md_print: a dict as its sorted keys (a sub-dict as
// "key/", or as its "_name"), a list joined by newlines, a leaf as Python
// prints it.
func ec2Print(data any) response {
	switch n := data.(type) {
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			if k != "_name" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		lines := make([]string, 0, len(keys))
		for _, k := range keys {
			if sub, ok := n[k].(map[string]any); ok {
				if name, ok := sub["_name"]; ok {
					lines = append(lines, pyStr(name))
				} else {
					lines = append(lines, k+"/")
				}
				continue
			}
			lines = append(lines, k)
		}
		return listing(lines)
	case []any:
		items := make([]string, len(n))
		for i, e := range n {
			s, ok := e.(string)
			if !ok {
				return serverError // str.join of a non-string
			}
			items[i] = s
		}
		return listing(items)
	case []byte:
		return ok(textPlain, n)
	}
	return ok(textPlain, []byte(pyStr(data)))
}

// pyStr is Python's str() of a JSON value.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}
