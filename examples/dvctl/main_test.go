package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// runM stops the shared test services after the tests ran.
type runM struct{ m *testing.M }

func (r runM) Run() int {
	code := r.m.Run()
	testenv.StopGlance()
	return code
}

func TestMain(m *testing.M) {
	testscript.Main(runM{m}, map[string]func(){"dvctl": func() { os.Exit(mainExit()) }})
}

// TestScripts runs the scripts in testdata/script: dvctl as a real process
// against the machine's Docker engine (and a private Glance), each script with
// its own state directory and label and name prefixes, so scripts run in
// parallel and see only their own instances. Whatever a script leaves is
// destroyed when it ends.
func TestScripts(t *testing.T) {
	testenv.MustHaveRoot(t)
	testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	glanceURL := ""
	if needsGlance() {
		glanceURL = testenv.MustHaveGlance(t)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			u := testenv.UniqueName("dvt")
			state := filepath.Join(env.WorkDir, "state")
			env.Setenv("IMAGE", img)
			demo, err := filepath.Abs("demo.yaml")
			if err != nil {
				return err
			}
			env.Setenv("DEMO", demo)
			env.Setenv("GLANCE_URL", glanceURL)
			env.Setenv("UNIQUE", u)
			env.Setenv("DVCTL_STATE_DIR", state)
			env.Setenv("DVCTL_LABEL_PREFIX", "io."+u+".")
			env.Setenv("DVCTL_NAME_PREFIX", u+"-")
			env.Setenv("DVCTL_STOP_TIMEOUT", "1s")
			env.Setenv("DVCTL_IMAGE_DIR", "")
			env.Setenv("DVCTL_GLANCE_URL", "")
			env.Setenv("HOME", env.WorkDir)
			env.Defer(func() { cleanupDriver(t, state, "io."+u+".", u+"-", filepath.Join(env.WorkDir, "images")) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"json":     cmdJSON,
			"waitfor":  cmdWaitFor,
			"jsonenv":  cmdJSONEnv,
			"noproc":   cmdNoProc,
		},
	})
}

func needsGlance() bool {
	_, err := os.Stat("testdata/script/image_glance.txtar")
	return err == nil
}

// cleanupDriver destroys every instance of the script's driver, through
// the SDK, and any store image it cached on the engine is left to the
// engine's tag cleanup below.
func cleanupDriver(t testing.TB, state, labelPrefix, namePrefix, imageDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Spawns from the script's local store cached its images on the engine
	// under tags named after the store IDs, which all start with the
	// script's unique name.
	cli := testenv.MustHaveDocker(t)
	unique := strings.TrimSuffix(namePrefix, "-")
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("reference", engine.TagRepository+":"+unique+"-*")})
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, im := range imgs.Items {
		for _, tag := range im.RepoTags {
			if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
	// Images the store named (snapshots get IDs of the store's choosing)
	// were cached on the engine under their tags too.
	if st, err := localdir.New(imageDir); err == nil {
		if list, err := st.List(ctx, image.ListOptions{}); err == nil {
			for _, m := range list {
				_, _ = cli.ImageRemove(ctx, engine.TagFor(m.ID), client.ImageRemoveOptions{Force: true})
			}
		}
	}
	_ = os.RemoveAll(imageDir)
	cleanupLabNetworks(ctx, t, state, unique)
	drv, err := docker.New(docker.WithStateDir(state), docker.WithLabelPrefix(labelPrefix), docker.WithNamePrefix(namePrefix), docker.WithStopTimeout(time.Second))
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer drv.Close()
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, in := range list {
		t.Errorf("cleanup: instance %s left behind by the script", in.ID)
		if err := drv.Destroy(ctx, in.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// cmdExitCode runs dvctl with args and checks its exit code:
// exitcode N dvctl ARGS...
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// cmdJSON parses the last command's stdout as JSON and checks the value at a
// path: json PATH WANT, where PATH is dot-separated keys and array indexes
// ("0.state", "actions.1.action"), "#" is the length of an array or object,
// and WANT is compared with the value's JSON text (strings unquoted).
// With !, the value must differ. `json PATH` alone checks the path exists.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: json PATH [WANT]")
	}
	var v any
	out := ts.ReadFile("stdout")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		ts.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	got, ok := jsonPath(v, args[0])
	if len(args) == 1 {
		if ok == neg {
			ts.Fatalf("json path %s: found=%v", args[0], ok)
		}
		return
	}
	if !ok {
		ts.Fatalf("json path %s: not found in\n%s", args[0], out)
	}
	if (got == args[1]) == neg {
		ts.Fatalf("json %s = %s, want %s%s", args[0], got, map[bool]string{true: "not "}[neg], args[1])
	}
}

func jsonPath(v any, path string) (string, bool) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			if k == "#" {
				v = float64(len(x))
				continue
			}
			var ok bool
			if v, ok = x[k]; !ok {
				return "", false
			}
		case []any:
			if k == "#" {
				v = float64(len(x))
				continue
			}
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return "", false
			}
			v = x[i]
		default:
			return "", false
		}
	}
	if s, ok := v.(string); ok {
		return s, true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}

// cmdJSONEnv sets the environment variable VAR to the value at PATH in the
// last command's JSON stdout (see cmdJSON): jsonenv VAR PATH.
func cmdJSONEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonenv VAR PATH")
	}
	var v any
	out := ts.ReadFile("stdout")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		ts.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	got, ok := jsonPath(v, args[1])
	if !ok {
		ts.Fatalf("json path %s: not found in\n%s", args[1], out)
	}
	ts.Setenv(args[0], got)
}

// cmdNoProc fails if a process's command line contains SUBSTR:
// noproc SUBSTR.
func cmdNoProc(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 || args[0] == "" {
		ts.Fatalf("usage: noproc SUBSTR")
	}
	m, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range m {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if cl := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cl, args[0]) {
			ts.Fatalf("process %s still runs: %s", filepath.Dir(p), cl)
		}
	}
}

// cmdWaitFor runs dvctl ARGS until its stdout matches REGEXP, for at most
// 30 seconds: waitfor REGEXP dvctl ARGS...
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: waitfor REGEXP COMMAND [ARGS...]")
	}
	re, err := regexp.Compile(args[0])
	if err != nil {
		ts.Fatalf("waitfor: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = ts.Exec(args[1], args[2:]...)
		if re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfor: %q not seen in %s", args[0], fmt.Sprint(args[1:]))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
