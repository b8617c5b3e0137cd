package configdrive

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// TestPyJSONAsPython: pyJSON writes what Python's json.dumps writes for
// the same value (Python reads our compact form, whose member order its
// dicts keep, and dumps it with Nova's defaults).
func TestPyJSONAsPython(t *testing.T) {
	py := testenv.MustHaveCloudInit(t) // Debian's /usr/bin/python3
	values := []any{
		object{{"b", 1}, {"a", []any{true, false, nil, -7, 1.5, "x"}}, {"c", object{}}, {"d", []any{}}},
		"plain ASCII with \"quotes\" and \\ backslash and /slash",
		"<script>&amp;</script>",
		"control \x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f end",
		"Latin é, CJK 中文, emoji 😀, line sep \u2028 para sep \u2029, BOM \ufeff",
		map[string]string{"zeta": "ü", "alpha": "a,b:c", "mid": "{\"not\": [json]}"},
		object{{"nested", object{{"list", []object{{{"k", "v"}}, {}}}}}},
		[]string{},
	}
	for _, v := range values {
		compact, err := marshal(v)
		require.NoError(t, err)
		cmd := exec.CommandContext(t.Context(), py, "-c", "import json, sys; sys.stdout.write(json.dumps(json.loads(sys.stdin.read())))")
		cmd.Stdin = bytes.NewReader(compact)
		want, err := cmd.Output()
		require.NoError(t, err, "%s", compact)
		got, err := pyJSON(v)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}
}
