package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIPJSONInNetnsTakesInterruptedDumpsAgain dumps the links of a
// namespace while other links come and go in it, which makes the kernel
// interrupt some dumps (ip then warns on standard error): every dump still
// decodes, and at least one was taken again.
func TestIPJSONInNetnsTakesInterruptedDumpsAgain(t *testing.T) {
	ns := NewHostNetns(t)
	for i := range 20 {
		out, err := exec.Command("ip", "-n", ns.Name, "link", "add", fmt.Sprintf("dvbr%d", i), "type", "bridge").CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	ctx, stop := context.WithCancel(t.Context())
	var churn sync.WaitGroup
	churn.Go(func() {
		for ctx.Err() == nil {
			_ = exec.Command("ip", "-n", ns.Name, "link", "add", "dvchurn", "type", "bridge").Run()
			_ = exec.Command("ip", "-n", ns.Name, "link", "del", "dvchurn").Run()
		}
	})
	t.Cleanup(func() { stop(); churn.Wait() })
	before := ipDumpRetries.Load()
	deadline := time.Now().Add(60 * time.Second)
	dumps := 0
	for ipDumpRetries.Load() == before && time.Now().Before(deadline) {
		var links []struct {
			IfName string `json:"ifname"`
		}
		require.NoError(t, IPJSONInNetns(t, t.Context(), ns.Path, &links, "-d", "link", "show"))
		require.GreaterOrEqual(t, len(links), 21, "lo and the 20 bridges")
		dumps++
	}
	require.Greater(t, ipDumpRetries.Load(), before, "no dump was interrupted in %d dumps over 60 s", dumps)
	t.Logf("%d dumps until one was taken again", dumps)
}
