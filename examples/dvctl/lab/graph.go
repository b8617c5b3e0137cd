package lab

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Graph writes the lab's topology as Graphviz dot ("dot") or a Mermaid
// flowchart ("mermaid"): instances as boxes, networks as ellipses,
// security groups as notes, the external network and its floating IPs,
// dependencies as dashed arrows.
func (f *File) Graph(w io.Writer, format string) error {
	var b strings.Builder
	switch format {
	case "dot":
		fmt.Fprintf(&b, "graph %q {\n  label=%s;\n  node [shape=box];\n", f.Name, dotQuote("lab "+f.Name))
		for _, name := range f.InstanceNames() {
			in := f.Instances[name]
			fmt.Fprintf(&b, "  %q [label=%s];\n", "i:"+name, dotQuote(instanceLabel(name, in, `\n`)))
		}
		for _, n := range f.networkNames() {
			net := f.Networks[n]
			fmt.Fprintf(&b, "  %q [shape=ellipse, label=%s];\n", "n:"+n, dotQuote(n+`\n`+net.CIDR+`\n`+f.BridgeName(n)+f.servicesLabel(n, `\n`)))
		}
		for _, g := range slices.Sorted(maps.Keys(f.SecurityGroups)) {
			fmt.Fprintf(&b, "  %q [shape=note, label=%s];\n", "sg:"+g, dotQuote("security group "+g+`\n`+rulesLabel(f.SecurityGroups[g], `\n`)))
		}
		if f.External != nil {
			fmt.Fprintf(&b, "  %q [shape=doublecircle, label=%s];\n", "ext", dotQuote("external"+`\n`+f.External.CIDR+`\n`+ExtNetnsName(f.Name)))
			for _, n := range f.routedNetworks() {
				fmt.Fprintf(&b, "  %q -- %q [label=%s];\n", "ext", "n:"+n, dotQuote("router "+f.Networks[n].Gateway))
			}
			for _, fip := range f.FloatingIPs {
				fmt.Fprintf(&b, "  %q -- %q [style=bold, color=blue, label=%s];\n", "ext", "i:"+fip.Instance, dotQuote(fmt.Sprintf("floating %s → eth%d", fip.IP, fip.Port)))
			}
		}
		for _, name := range f.InstanceNames() {
			for i, p := range f.Instances[name].Ports {
				fmt.Fprintf(&b, "  %q -- %q [label=%s];\n", "i:"+name, "n:"+p.Network, dotQuote(fmt.Sprintf("eth%d %s", i, p.IP)))
				for _, g := range p.SecurityGroups {
					fmt.Fprintf(&b, "  %q -- %q [style=dotted, label=%s];\n", "sg:"+g, "i:"+name, dotQuote(fmt.Sprintf("eth%d", i)))
				}
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
			fmt.Fprintf(&b, "  n_%s((\"%s<br/>%s%s\"))\n", mermaidID(n), n, f.Networks[n].CIDR, f.servicesLabel(n, "<br/>"))
		}
		for _, g := range slices.Sorted(maps.Keys(f.SecurityGroups)) {
			fmt.Fprintf(&b, "  sg_%s>\"security group %s<br/>%s\"]\n", mermaidID(g), g, rulesLabel(f.SecurityGroups[g], "<br/>"))
		}
		if f.External != nil {
			fmt.Fprintf(&b, "  ext(((\"external<br/>%s\")))\n", f.External.CIDR)
			for _, n := range f.routedNetworks() {
				fmt.Fprintf(&b, "  ext ---|\"router %s\"| n_%s\n", f.Networks[n].Gateway, mermaidID(n))
			}
			for _, fip := range f.FloatingIPs {
				fmt.Fprintf(&b, "  ext ==>|\"floating %s\"| i_%s\n", fip.IP, mermaidID(fip.Instance))
			}
		}
		for _, name := range f.InstanceNames() {
			for i, p := range f.Instances[name].Ports {
				fmt.Fprintf(&b, "  i_%s ---|\"eth%d %s\"| n_%s\n", mermaidID(name), i, p.IP, mermaidID(p.Network))
				for _, g := range p.SecurityGroups {
					fmt.Fprintf(&b, "  sg_%s -.-|eth%d| i_%s\n", mermaidID(g), i, mermaidID(name))
				}
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

// dotQuote quotes s for dot, keeping its \n escapes (line breaks).
func dotQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// rulesLabel lists a group's rules, one a line.
func rulesLabel(rules []Rule, nl string) string {
	var lines []string
	for _, r := range rules {
		dir := r.Direction
		if dir == "" {
			dir = "ingress"
		}
		s := dir + " " + cmp.Or(r.Protocol, "any")
		if r.Port != "" {
			s += " " + r.Port
		}
		if r.Remote != "" {
			s += " from " + r.Remote
		}
		if r.RemoteGroup != "" {
			s += " group " + r.RemoteGroup
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, nl)
}

func mermaidID(s string) string { return strings.NewReplacer("-", "_", ".", "_").Replace(s) }

// servicesLabel names a network's DHCP server and metadata service, if it
// has them, after a line break sep.
func (f *File) servicesLabel(net, sep string) string {
	if !f.Networks[net].DHCP {
		return ""
	}
	a, err := f.dhcpServer(net)
	if err != nil {
		return ""
	}
	return sep + "dhcp + metadata " + a.String()
}

func (f *File) networkNames() []string { return slices.Sorted(maps.Keys(f.Networks)) }
