package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const passing = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"run","Package":"p","Test":"TestA/sub"}
{"Action":"pass","Package":"p","Test":"TestA/sub","Elapsed":0.1}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.2}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"pass","Package":"p","Elapsed":0.3}
`

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
}

func TestReportPass(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.json", passing)
	write(t, dir, "p.secs", "12\n")
	var out bytes.Buffer
	ok, err := report(&out, dir)
	require.NoError(t, err)
	assert.True(t, ok, out.String())
	assert.Regexp(t, `p\s+2\s+0\s+0\s+12.0s\s+ok`, out.String())
}

// TestReportFailures: a failed test, a skipped one, a binary that never
// finished, one that matched nothing and one that never ran each fail the
// report, and the report names them with their output.
func TestReportFailures(t *testing.T) {
	for name, c := range map[string]struct {
		file, content, want string
	}{
		"fail": {"p.json", strings.Replace(strings.Replace(passing, `"pass","Package":"p","Test":"TestA/sub"`, `"fail","Package":"p","Test":"TestA/sub"`, 1),
			`{"Action":"pass","Package":"p","Test":"TestA/sub"`, "", 1) +
			`{"Action":"output","Package":"p","Test":"TestA/sub","Output":"boom: expected 1\n"}` + "\n", "--- FAIL p TestA/sub"},
		"skip": {"p.json", strings.Replace(passing, `{"Action":"pass","Package":"p","Test":"TestA/sub","Elapsed":0.1}`,
			`{"Action":"output","Package":"p","Test":"TestA/sub","Output":"needs CI\n"}`+"\n"+`{"Action":"skip","Package":"p","Test":"TestA/sub","Elapsed":0.1}`, 1), "--- SKIP p TestA/sub"},
		"unfinished": {"p.json", strings.Join(strings.Split(passing, "\n")[:4], "\n") + "\n", "did not finish"},
		"no tests": {"p.json", `{"Action":"output","Package":"p","Output":"testing: warning: no tests to run\n"}` + "\n" +
			`{"Action":"pass","Package":"p"}` + "\n", "no test matched"},
		"not run": {"p.notrun", "not run: the lane's deadline was reached\n", "deadline"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, c.file, c.content)
			var out bytes.Buffer
			ok, err := report(&out, dir)
			require.NoError(t, err)
			assert.False(t, ok, out.String())
			assert.Contains(t, out.String(), c.want)
			assert.Contains(t, out.String(), "FAIL")
		})
	}
}

func TestReportEmpty(t *testing.T) {
	_, err := report(&bytes.Buffer{}, t.TempDir())
	assert.Error(t, err)
}

// TestReportBenchmark: a benchmark passes with its result line (it has no
// pass action), also when it comes in pieces, and the report prints the
// line; one that printed no result
// line never ended, which fails the report.
func TestReportBenchmark(t *testing.T) {
	const bench = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"BenchmarkOS"}
{"Action":"output","Package":"p","Test":"BenchmarkOS","Output":"=== RUN   BenchmarkOS\n"}
{"Action":"output","Package":"p","Test":"BenchmarkOS","Output":"BenchmarkOS\n"}
{"Action":"output","Package":"p","Test":"BenchmarkOS","Output":"    bench_test.go:9: a peer's log\n"}
`
	const result = `{"Action":"output","Package":"p","Test":"BenchmarkOS","Output":"BenchmarkOS-2   \t       2\t       170.0 ns/op\t         1.050 running/privileged\n"}
`
	const end = `{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"pass","Package":"p","Elapsed":0.3}
`
	dir := t.TempDir()
	write(t, dir, "p_bench.json", bench+result+end)
	var out bytes.Buffer
	ok, err := report(&out, dir)
	require.NoError(t, err)
	assert.True(t, ok, out.String())
	assert.Regexp(t, `p_bench\s+1\s+0\s+0`, out.String())
	assert.Contains(t, out.String(), "p_bench: BenchmarkOS-2 2 170.0 ns/op 1.050 running/privileged")

	// The result line in pieces: the name when the benchmark starts, its
	// figures when it ends, split again by test2json where it is long.
	const pieces = `{"Action":"output","Package":"p","Test":"BenchmarkOS","Output":"BenchmarkOS-2   \t"}
{"Action":"output","Package":"p","Test":"BenchmarkOS","Output":"       2\t       170.0 ns/op\t         1.0"}
{"Action":"output","Package":"p","Test":"BenchmarkOS","Output":"50 running/privileged\n"}
`
	write(t, dir, "p_bench.json", bench+pieces+end)
	out.Reset()
	ok, err = report(&out, dir)
	require.NoError(t, err)
	assert.True(t, ok, out.String())
	assert.Contains(t, out.String(), "p_bench: BenchmarkOS-2 2 170.0 ns/op 1.050 running/privileged")

	write(t, dir, "p_bench.json", bench+end)
	out.Reset()
	ok, err = report(&out, dir)
	require.NoError(t, err)
	assert.False(t, ok, out.String())
	assert.Contains(t, out.String(), "never ended")
}
