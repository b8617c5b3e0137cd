package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GlanceProcess is a private glance-api owned by one test that the test
// can kill, as a crash would, and start again on the same port with the
// same database and image files: a store that goes away and comes back.
type GlanceProcess struct {
	// Endpoint is "http://127.0.0.1:<port>/", the same across restarts.
	Endpoint string

	mu     sync.Mutex
	g      *service // nil while killed
	api    string
	manage string
	dir    string
	paste  []byte
	port   int
}

// StartRestartableGlance starts a [GlanceProcess] for t. It is killed and
// its files removed at t's cleanup. It skips (or fails in CI) when
// glance-api is not installed or does not come up.
func StartRestartableGlance(t testing.TB) *GlanceProcess {
	t.Helper()
	SkipShort(t, "Glance")
	api, err1 := exec.LookPath("glance-api")
	manage, err2 := exec.LookPath("glance-manage")
	paste, err3 := os.ReadFile(GlancePasteIni)
	if err1 != nil || err2 != nil || err3 != nil {
		Missing(t, "glance-api: not installed (%v %v %v)", err1, err2, err3)
	}
	dir, err := os.MkdirTemp("", "dockervisor-glance-")
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &GlanceProcess{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port) + "/", api: api, manage: manage, dir: dir, paste: paste, port: port}
	t.Cleanup(func() {
		p.Kill()
		_ = os.RemoveAll(dir)
	})
	if err := p.Start(); err != nil {
		Missing(t, "glance-api: %v", err)
	}
	return p
}

// Kill kills the glance-api with SIGKILL and waits for it to exit. Its
// files stay. It is a no-op when it is not running.
func (p *GlanceProcess) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.g == nil {
		return
	}
	_ = p.g.cmd.Process.Kill()
	select {
	case <-p.g.exited:
	case <-time.After(10 * time.Second):
	}
	p.g = nil
}

// Start starts the glance-api (again) on its port with its files. It is a
// no-op when it runs.
func (p *GlanceProcess) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.g != nil {
		return nil
	}
	var err error
	for range 3 { // the port may linger for a moment after a kill
		var g *service
		g, err = launchGlanceOn(p.api, p.manage, p.dir, p.paste, p.port)
		if err == nil {
			p.g = g
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("start glance-api on port %d: %w", p.port, err)
}

// DataFiles returns the names of the image data files the glance-api
// keeps: what an image left behind (even a partial upload) would be.
func (p *GlanceProcess) DataFiles(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(p.dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}
