package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// placementDo sends a request with a JSON body to the Placement at ep and
// returns the status and the answer.
func placementDo(t *testing.T, c *http.Client, method, url string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	require.NoError(t, err)
	req.Header.Set("X-Auth-Token", PlacementToken)
	req.Header.Set("OpenStack-API-Version", "placement 1.39")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// placementDelete deletes url in a cleanup, ignoring errors.
func placementDelete(c *http.Client, url string) {
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	if err != nil {
		return
	}
	req.Header.Set("X-Auth-Token", PlacementToken)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
}

// TestPlacementWorkers checks that the shared Placement runs as several
// worker processes (uwsgi's master, its HTTP router and the workers share
// the master's process group).
func TestPlacementWorkers(t *testing.T) {
	MustHavePlacement(t)
	svc, err := placement.get()
	require.NoError(t, err)
	pgid := svc.cmd.Process.Pid
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	var members int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if ok && len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			members++
		}
	}
	assert.GreaterOrEqual(t, members, PlacementWorkers+1, "master and %d workers", PlacementWorkers)
}

// TestPlacementConcurrentWrites writes from several clients at once, as
// concurrent reporters and schedulers do: every write succeeds (with
// sqlite under several processes, most would fail with "database is
// locked").
func TestPlacementConcurrentWrites(t *testing.T) {
	ep := MustHavePlacement(t)
	const n = 12
	c := &http.Client{}
	prefix := UniqueName("concurrent-")
	uuids := make([]string, n)
	for i := range uuids {
		uuids[i] = uuid.NewString()
	}
	t.Cleanup(func() {
		for _, u := range uuids {
			placementDelete(c, ep+"resource_providers/"+u)
		}
	})
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i, u := range uuids {
		wg.Go(func() {
			code, body := placementDo(t, c, http.MethodPost, ep+"resource_providers", map[string]any{"name": fmt.Sprintf("%s%d", prefix, i), "uuid": u})
			if code != http.StatusOK {
				errs[i] = fmt.Sprintf("create: %d %s", code, body)
				return
			}
			code, body = placementDo(t, c, http.MethodPut, ep+"resource_providers/"+u+"/inventories", map[string]any{
				"resource_provider_generation": 0,
				"inventories":                  map[string]any{"VCPU": map[string]any{"total": 8}},
			})
			if code != http.StatusOK {
				errs[i] = fmt.Sprintf("inventories: %d %s", code, body)
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		assert.Empty(t, e, "provider %d", i)
	}
}

// TestPlacementCapacityUnderConcurrentClaims claims one vCPU at a time
// from many clients at once on a provider with 8: exactly 8 claims
// succeed, the others are refused (409), and the provider's usage never
// exceeds its capacity.
func TestPlacementCapacityUnderConcurrentClaims(t *testing.T) {
	ep := MustHavePlacement(t)
	c := &http.Client{}
	rp := uuid.NewString()
	code, body := placementDo(t, c, http.MethodPost, ep+"resource_providers", map[string]any{"name": UniqueName("capacity-"), "uuid": rp})
	require.Equal(t, http.StatusOK, code, body)
	consumers := make([]string, 24)
	t.Cleanup(func() {
		for _, id := range consumers {
			placementDelete(c, ep+"allocations/"+id)
		}
		placementDelete(c, ep+"resource_providers/"+rp)
	})
	code, body = placementDo(t, c, http.MethodPut, ep+"resource_providers/"+rp+"/inventories", map[string]any{
		"resource_provider_generation": 0,
		"inventories":                  map[string]any{"VCPU": map[string]any{"total": 8}},
	})
	require.Equal(t, http.StatusOK, code, body)
	codes := make([]int, len(consumers))
	var wg sync.WaitGroup
	for i := range consumers {
		consumers[i] = uuid.NewString()
		wg.Go(func() {
			codes[i], _ = placementDo(t, c, http.MethodPut, ep+"allocations/"+consumers[i], map[string]any{
				"allocations": map[string]any{rp: map[string]any{"resources": map[string]int{"VCPU": 1}}},
				"project_id":  "p", "user_id": "u", "consumer_generation": nil, "consumer_type": "INSTANCE",
			})
		})
	}
	wg.Wait()
	ok := 0
	for _, code := range codes {
		if code == http.StatusNoContent {
			ok++
		} else {
			assert.Equal(t, http.StatusConflict, code)
		}
	}
	var usages struct {
		Usages map[string]int `json:"usages"`
	}
	PlacementGet(t, ep, "1.39", "/resource_providers/"+rp+"/usages", &usages)
	assert.Equal(t, 8, usages.Usages["VCPU"], "usage at capacity, not beyond")
	assert.Equal(t, 8, ok, "claims that succeeded")
}
