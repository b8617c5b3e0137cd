package lab

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Graph writes the lab's topology as Graphviz dot ("dot") or a Mermaid
// flowchart ("mermaid"): instances as boxes, dependencies as arrows.
func (f *File) Graph(w io.Writer, format string) error {
	var b strings.Builder
	switch format {
	case "dot":
		fmt.Fprintf(&b, "graph %q {\n  label=%q;\n  node [shape=box];\n", f.Name, "lab "+f.Name)
		for _, name := range f.InstanceNames() {
			in := f.Instances[name]
			fmt.Fprintf(&b, "  %q [label=%q];\n", "i:"+name, instanceLabel(name, in, `\n`))
		}
		for _, n := range f.networkNames() {
			net := f.Networks[n]
			fmt.Fprintf(&b, "  %q [shape=ellipse, label=%q];\n", "n:"+n, n+`\n`+net.CIDR+`\n`+f.BridgeName(n))
		}
		for _, name := range f.InstanceNames() {
			for i, p := range f.Instances[name].Ports {
				fmt.Fprintf(&b, "  %q -- %q [label=%q];\n", "i:"+name, "n:"+p.Network, fmt.Sprintf("eth%d %s", i, p.IP))
			}
			for _, d := range f.Instances[name].DependsOn {
				fmt.Fprintf(&b, "  %q -- %q [dir=forward, style=dashed, label=\"after\"];\n", "i:"+d, "i:"+name)
			}
		}
		b.WriteString("}\n")
	case "mermaid":
		b.WriteString("flowchart LR\n")
		for _, name := range f.InstanceNames() {
			fmt.Fprintf(&b, "  i_%s[\"%s\"]\n", mermaidID(name), instanceLabel(name, f.Instances[name], "<br/>"))
		}
		for _, n := range f.networkNames() {
			fmt.Fprintf(&b, "  n_%s((\"%s<br/>%s\"))\n", mermaidID(n), n, f.Networks[n].CIDR)
		}
		for _, name := range f.InstanceNames() {
			for i, p := range f.Instances[name].Ports {
				fmt.Fprintf(&b, "  i_%s ---|\"eth%d %s\"| n_%s\n", mermaidID(name), i, p.IP, mermaidID(p.Network))
			}
			for _, d := range f.Instances[name].DependsOn {
				fmt.Fprintf(&b, "  i_%s -.->|after| i_%s\n", mermaidID(d), mermaidID(name))
			}
		}
	default:
		return fmt.Errorf("%w: graph format %q: want dot or mermaid", ErrInvalid, format)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func instanceLabel(name string, in Instance, nl string) string {
	s := name + nl + in.Image
	if in.Flavor.VCPUs > 0 || in.Flavor.Memory > 0 {
		s += fmt.Sprintf("%s%d vCPU, %d MiB", nl, max(in.Flavor.VCPUs, 1), in.Flavor.Memory)
	}
	return s
}

func mermaidID(s string) string { return strings.NewReplacer("-", "_", ".", "_").Replace(s) }

func (f *File) networkNames() []string { return slices.Sorted(maps.Keys(f.Networks)) }
