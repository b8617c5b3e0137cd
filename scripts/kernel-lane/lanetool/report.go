package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// event is one line of test2json output.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// testResult is what became of one test (or subtest).
type testResult struct {
	name    string
	action  string // pass, fail, skip; "" when it never ended
	elapsed float64
	output  []string
	bench   string // a benchmark's result line so far
}

// pkgResult sums up one test binary's run.
type pkgResult struct {
	name              string
	pkg               string
	pass, fail, skip  int
	elapsed           float64
	result            string // ok, FAIL
	problems          []string
	failed, skipped   []*testResult
	unfinished        []*testResult
	noTests, finished bool
	// benchmarks are the result lines of the benchmarks that ran.
	benchmarks []string
}

// maxOutput is how many lines of a failed or skipped test's output the
// report shows (its end).
const maxOutput = 40

// parse reads the test2json stream of one test binary.
func parse(name string, r io.Reader) (*pkgResult, error) {
	p := &pkgResult{name: name}
	tests := map[string]*testResult{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("%s: %w: %q", name, err, line)
		}
		if e.Package != "" {
			p.pkg = e.Package
		}

		if e.Test == "" {
			switch e.Action {
			case "output":
				if strings.Contains(e.Output, "testing: warning: no tests to run") {
					p.noTests = true
				}
			case "pass", "fail":
				p.finished = true
				if e.Action == "fail" {
					p.result = "FAIL"
				}
			}
			continue
		}
		t := tests[e.Test]
		if t == nil {
			t = &testResult{name: e.Test}
			tests[e.Test] = t
			order = append(order, e.Test)
		}
		switch e.Action {
		case "output":
			// A benchmark ends with its result line, not with an action
			// (unless it fails or skips). The line may come in pieces:
			// the benchmark's name when it starts, its figures when it
			// ends, and test2json splits a long line.
			if strings.HasPrefix(e.Test, "Benchmark") {
				if strings.HasPrefix(e.Output, e.Test) {
					t.bench = ""
				}
				t.bench += e.Output
				if strings.HasPrefix(t.bench, e.Test) && strings.HasSuffix(t.bench, "\n") {
					if strings.Contains(t.bench, " ns/op") {
						p.benchmarks = append(p.benchmarks, strings.Join(strings.Fields(t.bench), " "))
						if t.action == "" {
							t.action = "pass"
						}
					}
					t.bench = ""
				}
			}
			t.output = append(t.output, strings.TrimRight(e.Output, "\n"))
			if len(t.output) > 4*maxOutput {
				t.output = slices.Delete(t.output, 0, len(t.output)-maxOutput)
			}
		case "pass", "fail", "skip":
			t.action, t.elapsed = e.Action, e.Elapsed
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, n := range order {
		t := tests[n]
		switch t.action {
		case "pass":
			p.pass++
		case "fail":
			p.fail++
			p.failed = append(p.failed, t)
		case "skip":
			p.skip++
			p.skipped = append(p.skipped, t)
		default:
			p.unfinished = append(p.unfinished, t)
		}
	}
	if !p.finished {
		p.problems = append(p.problems, "the test binary did not finish (killed, crashed or out of time)")
	}
	if p.noTests || len(order) == 0 {
		p.problems = append(p.problems, "no test matched the lane's -run selection")
	}
	if len(p.unfinished) > 0 {
		p.problems = append(p.problems, fmt.Sprintf("%d test(s) started and never ended", len(p.unfinished)))
	}
	if p.result == "" {
		p.result = "ok"
	}
	if p.fail > 0 || p.skip > 0 || len(p.problems) > 0 {
		p.result = "FAIL"
	}
	return p, nil
}

// report reads every DIR/NAME.json (and DIR/NAME.notrun, a binary the lane
// had no time left for), writes the summary to w and reports whether
// everything passed.
func report(w io.Writer, dir string) (bool, error) {
	jsons, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return false, err
	}
	notrun, err := filepath.Glob(filepath.Join(dir, "*.notrun"))
	if err != nil {
		return false, err
	}
	if len(jsons)+len(notrun) == 0 {
		return false, fmt.Errorf("no results in %s", dir)
	}
	var results []*pkgResult
	for _, f := range jsons {
		r, err := os.Open(f)
		if err != nil {
			return false, err
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		p, err := parse(name, r)
		r.Close()
		if err != nil {
			return false, err
		}
		// A test binary's own output has no elapsed time for the package
		// (go test adds it); the lane measures the binary's wall time.
		if b, err := os.ReadFile(filepath.Join(dir, name+".secs")); err == nil {
			_, _ = fmt.Sscan(string(b), &p.elapsed)
		}
		results = append(results, p)
	}
	for _, f := range notrun {
		why, _ := os.ReadFile(f)
		results = append(results, &pkgResult{name: strings.TrimSuffix(filepath.Base(f), ".notrun"), result: "FAIL",
			problems: []string{strings.TrimSpace(string(why))}})
	}
	slices.SortFunc(results, func(a, b *pkgResult) int { return strings.Compare(a.name, b.name) })

	ok := true
	fmt.Fprintf(w, "%-28s %5s %5s %5s %9s  %s\n", "lane package", "pass", "fail", "skip", "time", "result")
	for _, p := range results {
		fmt.Fprintf(w, "%-28s %5d %5d %5d %8.1fs  %s\n", p.name, p.pass, p.fail, p.skip, p.elapsed, p.result)
		if p.result != "ok" {
			ok = false
		}
	}
	for _, p := range results {
		for _, b := range p.benchmarks {
			fmt.Fprintf(w, "\n%s: %s", p.name, b)
		}
	}
	fmt.Fprintln(w)
	for _, p := range results {
		for _, pr := range p.problems {
			fmt.Fprintf(w, "\n%s: %s\n", p.name, pr)
		}
		for _, group := range []struct {
			what  string
			tests []*testResult
		}{{"FAIL", p.failed}, {"SKIP", p.skipped}, {"UNFINISHED", p.unfinished}} {
			for _, t := range group.tests {
				fmt.Fprintf(w, "\n--- %s %s %s (%.1fs)\n", group.what, p.name, t.name, t.elapsed)
				out := t.output
				if len(out) > maxOutput {
					out = out[len(out)-maxOutput:]
				}
				for _, l := range out {
					fmt.Fprintf(w, "    %s\n", l)
				}
			}
		}
	}
	return ok, nil
}
