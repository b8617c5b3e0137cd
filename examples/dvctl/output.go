package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
)

// emit prints v as indented JSON with -o json, else calls table.
func (a *app) emit(v any, table func(w io.Writer)) error {
	if a.g.output == "json" {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// emitLine prints one element of a stream: a JSON object per line with
// -o json, else the line text.
func (a *app) emitLine(v any, line string) error {
	if a.g.output == "json" {
		return json.NewEncoder(a.out).Encode(v)
	}
	_, err := fmt.Fprintln(a.out, line)
	return err
}

// row writes tab-separated cells.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

// bytesIEC prints a byte count as 1.5MiB; zero as "-".
func bytesIEC(n uint64) string {
	if n == 0 {
		return "-"
	}
	return units.BytesSize(float64(n))
}

// mib prints a MiB count as a size; zero as the given text.
func mib(n int64, zero string) string {
	if n == 0 {
		return zero
	}
	return units.BytesSize(float64(n) * (1 << 20))
}

// ago prints the time since t ("3 minutes ago"); zero as "-".
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}

// dur prints a duration rounded for people.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// kvs prints a map as k=v,k=v in key order; empty as "-".
func kvs(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
