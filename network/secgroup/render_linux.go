package secgroup

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/nftutil"
)

// Chain and set names inside the tables.
const (
	chainForward    = "forward"    // ip, ip6: base chain on the forward hook
	chainEgress     = "egress"     // ip, ip6: physdev-in dispatch to the o- chains
	chainIngress    = "ingress"    // ip, ip6: physdev-out dispatch to the i- chains
	chainPrerouting = "prerouting" // bridge: base chain, iifname vmap to the s- chains
	mapPorts        = "ports"      // bridge: device -> jump s-<port>
	prefixIn        = "i-"         // traffic to the port
	prefixOut       = "o-"         // traffic from the port
	prefixSpoof     = "s-"         // bridge: anti-spoofing of the port
	prefixRemote    = "rg-"        // ip, ip6: addresses of a group's ports
)

// Ethernet protocol numbers.
var (
	ethIPv4 = []byte{0x08, 0x00}
	ethIPv6 = []byte{0x86, 0xdd}
	ethARP  = []byte{0x08, 0x06}
)

// ICMPv6 types a port always receives (MLD, router advertisement,
// neighbour solicitation and advertisement, MLDv2) and always sends (the
// same, with router solicitation instead of advertisement).
var (
	icmp6In  = []byte{130, 131, 132, 134, 135, 136, 143}
	icmp6Out = []byte{130, 131, 132, 133, 135, 136, 143}
)

type family struct {
	v6    bool
	table *nftables.Table
}

// builder queues one transaction's messages on c.
type builder struct {
	c         *nftables.Conn
	cur, next state
	// gens holds the version of each port's i- and o- chains (absent: 0);
	// stale the names of unreachable port chains, in both ip and ip6
	// tables, still to delete. The builder updates both.
	gens    map[string]uint64
	stale   []string
	removes bool // the transaction removes something (a kernel RCU wait)
	fams    [2]family
	br      *nftables.Table
	err     error
	rules   int
}

// portChain is the name of the i- or o- chain (prefix) of port id at
// version gen: "i-<id>" at 0, "i<gen>-<id>" after (no collision: the
// version ends at the first dash).
func portChain(prefix, id string, gen uint64) string {
	if gen == 0 {
		return prefix + id
	}
	return fmt.Sprintf("%s%d-%s", prefix[:len(prefix)-1], gen, id)
}

func (b *builder) in(id string) string  { return portChain(prefixIn, id, b.gens[id]) }
func (b *builder) out(id string) string { return portChain(prefixOut, id, b.gens[id]) }

func (b *builder) tables() {
	b.fams = [2]family{
		{v6: false, table: &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}},
		{v6: true, table: &nftables.Table{Family: nftables.TableFamilyIPv6, Name: TableName}},
	}
	b.br = &nftables.Table{Family: nftables.TableFamilyBridge, Name: TableName}
}

func (b *builder) fail(err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
}

func (b *builder) rule(t *nftables.Table, chain string, exprs ...expr.Any) {
	b.rules++
	b.c.AddRule(&nftables.Rule{Table: t, Chain: &nftables.Chain{Name: chain, Table: t}, Exprs: exprs})
}

func cat(parts ...[]expr.Any) []expr.Any { return slices.Concat(parts...) }

func (b *builder) deleteAll() {
	b.gens, b.stale = map[string]uint64{}, nil
	for _, f := range b.fams {
		nftutil.DeleteTable(b.c, f.table)
	}
	nftutil.DeleteTable(b.c, b.br)
}

// full deletes the tables (whatever they hold) and builds them from next.
func (b *builder) full() {
	b.deleteAll()
	accept := nftables.ChainPolicyAccept
	for _, f := range b.fams {
		b.c.AddTable(f.table)
		b.c.AddChain(&nftables.Chain{Name: chainForward, Table: f.table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		b.c.AddChain(&nftables.Chain{Name: chainEgress, Table: f.table})
		b.c.AddChain(&nftables.Chain{Name: chainIngress, Table: f.table})
		// Egress of the sending port first: its chain returns when it
		// allows, so the receiving port's ingress chain decides next.
		b.rule(f.table, chainForward, nftutil.Jump(chainEgress))
		b.rule(f.table, chainForward, nftutil.Jump(chainIngress))
	}
	b.c.AddTable(b.br)
	b.c.AddChain(&nftables.Chain{Name: chainPrerouting, Table: b.br, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200), Policy: &accept})
	b.fail(b.c.AddSet(b.portMap(), nil))
	b.rule(b.br, chainPrerouting,
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: mapPorts})

	for _, id := range slices.Sorted(maps.Keys(b.next.groups)) {
		b.groupSets(id, true, true)
	}
	for _, id := range slices.Sorted(maps.Keys(b.next.ports)) {
		b.portChains(b.next.ports[id])
		b.spoofChain(b.next.ports[id], true)
	}
	b.dispatch(true, nil, nil)
	b.bridgeMap(slices.Sorted(maps.Keys(b.next.ports)), false)
}

func (b *builder) portMap() *nftables.Set {
	return &nftables.Set{Table: b.br, Name: mapPorts, ID: nftutil.SetID(), IsMap: true,
		KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict, KeyByteOrder: binaryutil.NativeEndian}
}

// incremental brings tables that hold cur to next, rewriting only what
// changed. A port whose rules change gets new chains, built in full, and
// a dispatch to them inserted before the old one: a transaction that only
// adds. The old chains are then stale (unreachable), deleted by collect or
// by the next transaction that removes something anyway.
func (b *builder) incremental() {
	rulesChanged := map[string]bool{}
	for id, g := range b.next.groups {
		old, ok := b.cur.groups[id]
		if !ok || !reflect.DeepEqual(old.Rules, g.Rules) {
			rulesChanged[id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(b.next.groups)) {
		_, existed := b.cur.groups[id]
		b.groupSets(id, !existed, false)
	}
	rewrite := false // the dispatch must be rewritten (ports gone or moved)
	var added, switched []string
	for id, old := range b.cur.ports {
		if p, ok := b.next.ports[id]; !ok || p.Device != old.Device {
			rewrite = true
		}
	}
	var gone []string // chains of removed ports
	for _, id := range slices.Sorted(maps.Keys(b.cur.ports)) {
		if _, ok := b.next.ports[id]; !ok {
			gone = append(gone, b.in(id), b.out(id))
			delete(b.gens, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(b.next.ports)) {
		p := b.next.ports[id]
		old, existed := b.cur.ports[id]
		dirty := !existed || !reflect.DeepEqual(old, p)
		for _, g := range p.Groups {
			dirty = dirty || rulesChanged[g]
		}
		if dirty && existed {
			b.stale = append(b.stale, b.in(id), b.out(id))
			b.gens[id]++
			switched = append(switched, id)
		}
		if dirty {
			b.portChains(p)
		}
		if !existed || old.Device != p.Device || !reflect.DeepEqual(old.MAC, p.MAC) || !reflect.DeepEqual(old.IPs, p.IPs) {
			b.spoofChain(p, !existed)
		}
		if !existed {
			added = append(added, id)
		}
	}
	removedGroups := false
	for id := range b.cur.groups {
		if _, ok := b.next.groups[id]; !ok {
			removedGroups = true
		}
	}
	b.removes = b.removes || rewrite || removedGroups
	if rewrite {
		b.bridgeMap(slices.Sorted(maps.Keys(b.next.ports)), true)
	} else {
		b.bridgeMap(added, false)
	}
	if rewrite || (b.removes && len(b.stale) > 0) {
		// Removing anyway: rewrite the dispatch and drop the stale chains
		// in this transaction.
		b.dispatch(true, nil, nil)
		b.deleteChains(b.stale)
		b.stale = nil
	} else {
		b.dispatch(false, added, switched)
	}
	b.deleteChains(gone)
	for _, id := range slices.Sorted(maps.Keys(b.cur.ports)) {
		if _, ok := b.next.ports[id]; ok {
			continue
		}
		ch := &nftables.Chain{Name: prefixSpoof + id, Table: b.br}
		b.c.FlushChain(ch)
		b.c.DelChain(ch)
	}
	for _, id := range slices.Sorted(maps.Keys(b.cur.groups)) {
		if _, ok := b.next.groups[id]; ok {
			continue
		}
		for _, f := range b.fams {
			b.c.DelSet(&nftables.Set{Table: f.table, Name: prefixRemote + id})
		}
	}
}

// deleteChains deletes the chains names from the ip and ip6 tables.
func (b *builder) deleteChains(names []string) {
	for _, f := range b.fams {
		for _, name := range names {
			ch := &nftables.Chain{Name: name, Table: f.table}
			b.c.FlushChain(ch)
			b.c.DelChain(ch)
		}
	}
}

// collect rewrites the physdev dispatch from cur (dropping the rules to
// stale chains) and deletes the stale chains: what updates left
// unreachable, in one transaction.
func (b *builder) collect() {
	b.dispatch(true, nil, nil)
	b.deleteChains(b.stale)
	b.stale = nil
}

// groupSets creates (create) or refills, if its members changed (or
// always with force), the address sets of group id.
func (b *builder) groupSets(id string, create, force bool) {
	n4, n6 := b.next.members(id)
	o4, o6 := b.cur.members(id)
	for _, f := range b.fams {
		want, had := n4, o4
		typ := nftables.TypeIPAddr
		if f.v6 {
			want, had, typ = n6, o6, nftables.TypeIP6Addr
		}
		s := &nftables.Set{Table: f.table, Name: prefixRemote + id, KeyType: typ, ID: nftutil.SetID()}
		if create {
			b.fail(b.c.AddSet(s, nil))
		} else if !force && slices.Equal(want, had) {
			continue
		} else if !force && grown(had, want) {
			want = slices.DeleteFunc(slices.Clone(want), func(a netip.Addr) bool { return slices.Contains(had, a) })
		} else {
			b.c.FlushSet(s)
			b.removes = true
		}
		if len(want) > 0 {
			elems := make([]nftables.SetElement, len(want))
			for i, a := range want {
				elems[i] = nftables.SetElement{Key: a.AsSlice()}
			}
			b.fail(b.c.SetAddElements(s, elems))
		}
	}
}

// dispatch rewrites the physdev dispatch chains from next (all), or
// appends the dispatch of the added ports and inserts, before the old one,
// the dispatch of the switched ones to their new chains. Dispatch rules
// goto the port chains, so that a port chain's return leaves the dispatch
// chain: an old dispatch rule after a new one is never reached.
func (b *builder) dispatch(all bool, added, switched []string) {
	ids := added
	if all {
		ids, switched = slices.Sorted(maps.Keys(b.next.ports)), nil
	}
	for _, f := range b.fams {
		egress := &nftables.Chain{Name: chainEgress, Table: f.table}
		ingress := &nftables.Chain{Name: chainIngress, Table: f.table}
		if all {
			b.c.FlushChain(egress)
			b.c.FlushChain(ingress)
			b.removes = true
		}
		for _, id := range ids {
			dev := b.next.ports[id].Device
			b.rule(f.table, chainEgress, nftutil.Physdev(dev, ""), gotoChain(b.out(id)))
			b.rule(f.table, chainIngress, nftutil.Physdev("", dev), gotoChain(b.in(id)))
		}
		for _, id := range switched {
			dev := b.next.ports[id].Device
			b.rules += 2
			b.c.InsertRule(&nftables.Rule{Table: f.table, Chain: egress,
				Exprs: []expr.Any{nftutil.Physdev(dev, ""), gotoChain(b.out(id))}})
			b.c.InsertRule(&nftables.Rule{Table: f.table, Chain: ingress,
				Exprs: []expr.Any{nftutil.Physdev("", dev), gotoChain(b.in(id))}})
		}
	}
}

func gotoChain(name string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictGoto, Chain: name} }

// bridgeMap adds the ports ids to the bridge port map, emptied first with
// flush.
func (b *builder) bridgeMap(ids []string, flush bool) {
	m := b.portMap()
	m.ID = 0
	if flush {
		b.c.FlushSet(m)
		b.removes = true
	}
	if len(ids) == 0 {
		return
	}
	elems := make([]nftables.SetElement, 0, len(ids))
	for _, id := range ids {
		elems = append(elems, nftables.SetElement{Key: nftutil.IfName(b.next.ports[id].Device),
			VerdictData: nftutil.Jump(prefixSpoof + id)})
	}
	b.fail(b.c.SetAddElements(m, elems))
}

func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func l4(proto byte) []expr.Any { return nftutil.MetaEq(expr.MetaKeyL4PROTO, []byte{proto}) }

func udpPorts(sport, dport int) []expr.Any {
	out := l4(17)
	if sport > 0 {
		out = append(out, nftutil.PayloadCmp(expr.PayloadBaseTransportHeader, 0, expr.CmpOpEq, nftutil.Port(uint16(sport)))...)
	}
	if dport > 0 {
		out = append(out, nftutil.PayloadCmp(expr.PayloadBaseTransportHeader, 2, expr.CmpOpEq, nftutil.Port(uint16(dport)))...)
	}
	return out
}

func icmp6Type(t byte) []expr.Any {
	return cat(l4(58), nftutil.PayloadCmp(expr.PayloadBaseTransportHeader, 0, expr.CmpOpEq, []byte{t}))
}

var (
	accept = nftutil.Verdict(expr.VerdictAccept)
	drop   = nftutil.Verdict(expr.VerdictDrop)
	ret    = nftutil.Verdict(expr.VerdictReturn)
)

// portChains creates the i- and o- chains of p, at its version in gens,
// in both families. (A transaction that deletes anything waits for an RCU
// grace period in the kernel, so an update only adds new chains.)
func (b *builder) portChains(p Port) {
	var rules []compiled
	for _, g := range p.Groups {
		for _, r := range b.next.groups[g].Rules {
			c, err := r.compile()
			b.fail(err)
			rules = append(rules, c)
		}
	}
	established := ctState(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
	invalid := ctState(expr.CtStateBitINVALID)
	for _, f := range b.fams {
		in, out := b.in(p.ID), b.out(p.ID)
		for _, name := range []string{in, out} {
			b.c.AddChain(&nftables.Chain{Name: name, Table: f.table})
		}
		t := f.table
		// Traffic to the port.
		b.rule(t, in, cat(established, []expr.Any{accept})...)
		if f.v6 {
			for _, ty := range icmp6In {
				b.rule(t, in, cat(icmp6Type(ty), []expr.Any{accept})...)
			}
			b.rule(t, in, cat(udpPorts(547, 546), []expr.Any{accept})...)
		} else {
			b.rule(t, in, cat(udpPorts(67, 68), []expr.Any{accept})...)
		}
		b.rule(t, in, cat(invalid, []expr.Any{drop})...)
		for _, c := range rules {
			if c.ingress && c.v6 == f.v6 {
				b.rule(t, in, cat(matchRule(c), []expr.Any{accept})...)
			}
		}
		b.rule(t, in, drop)
		// Traffic from the port.
		if f.v6 {
			b.rule(t, out, cat(icmp6Type(134), []expr.Any{drop})...)
			for _, ty := range icmp6Out {
				b.rule(t, out, cat(icmp6Type(ty), []expr.Any{ret})...)
			}
			b.rule(t, out, cat(udpPorts(546, 547), []expr.Any{ret})...)
			b.rule(t, out, cat(udpPorts(547, 0), []expr.Any{drop})...)
		} else {
			b.rule(t, out, cat(udpPorts(68, 67), []expr.Any{ret})...)
			b.rule(t, out, cat(udpPorts(67, 0), []expr.Any{drop})...)
		}
		b.rule(t, out, cat(established, []expr.Any{ret})...)
		b.rule(t, out, cat(invalid, []expr.Any{drop})...)
		for _, c := range rules {
			if !c.ingress && c.v6 == f.v6 {
				b.rule(t, out, cat(matchRule(c), []expr.Any{ret})...)
			}
		}
		b.rule(t, out, drop)
	}
}

// matchRule is the match of a compiled rule (without verdict).
func matchRule(c compiled) []expr.Any {
	var e []expr.Any
	if c.proto >= 0 {
		e = append(e, l4(byte(c.proto))...)
	}
	if c.portMax != 0 {
		if c.portMin == c.portMax {
			e = append(e, nftutil.PayloadCmp(expr.PayloadBaseTransportHeader, 2, expr.CmpOpEq, nftutil.Port(c.portMin))...)
		} else {
			e = append(e,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: nftutil.Port(c.portMin), ToData: nftutil.Port(c.portMax)})
		}
	}
	if c.icmpType >= 0 {
		e = append(e, nftutil.PayloadCmp(expr.PayloadBaseTransportHeader, 0, expr.CmpOpEq, []byte{byte(c.icmpType)})...)
	}
	if c.icmpCode >= 0 {
		e = append(e, nftutil.PayloadCmp(expr.PayloadBaseTransportHeader, 1, expr.CmpOpEq, []byte{byte(c.icmpCode)})...)
	}
	// The peer: the source of ingress traffic, the destination of egress.
	off, n := uint32(16), uint32(4)
	switch {
	case c.v6 && c.ingress:
		off, n = 8, 16
	case c.v6:
		off, n = 24, 16
	case c.ingress:
		off = 12
	}
	if c.remote.IsValid() {
		e = append(e, nftutil.PrefixMatch(off, c.remote)...)
	}
	if c.remoteGroup != "" {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Lookup{SourceRegister: 1, SetName: prefixRemote + c.remoteGroup})
	}
	return e
}

// spoofChain (re)writes the bridge chain that drops what p sends from a MAC
// or an address it does not own: Ethernet source, IPv4 and IPv6 source
// (the fixed IPs, the IPv6 link-local address of the MAC, the unspecified
// address for DHCP and duplicate address detection only), ARP sender, and
// every other ethertype.
func (b *builder) spoofChain(p Port, fresh bool) {
	t := b.br
	name := prefixSpoof + p.ID
	ch := b.c.AddChain(&nftables.Chain{Name: name, Table: t})
	if !fresh {
		b.c.FlushChain(ch)
		b.removes = true
	}
	mac := []byte(p.MAC)
	proto := func(eth []byte) []expr.Any { return nftutil.MetaEq(expr.MetaKeyPROTOCOL, eth) }
	net := func(off uint32, data []byte) []expr.Any {
		return nftutil.PayloadCmp(expr.PayloadBaseNetworkHeader, off, expr.CmpOpEq, data)
	}
	b.rule(t, name, cat(nftutil.PayloadCmp(expr.PayloadBaseLLHeader, 6, expr.CmpOpNeq, mac), []expr.Any{drop})...)
	v6 := []netip.Addr{linkLocal(mac)}
	for _, ip := range p.IPs {
		if ip.Is4() {
			b.rule(t, name, cat(proto(ethIPv4), net(12, ip.AsSlice()), []expr.Any{ret})...)
			b.rule(t, name, cat(proto(ethARP), net(14, ip.AsSlice()), nftutil.PayloadCmp(expr.PayloadBaseNetworkHeader, 8, expr.CmpOpEq, mac), []expr.Any{ret})...)
		} else {
			v6 = append(v6, ip)
		}
	}
	zero4 := []byte{0, 0, 0, 0}
	b.rule(t, name, cat(proto(ethIPv4), net(12, zero4), udpPorts(68, 67), []expr.Any{ret})...)
	b.rule(t, name, cat(proto(ethARP), net(14, zero4), nftutil.PayloadCmp(expr.PayloadBaseNetworkHeader, 8, expr.CmpOpEq, mac), []expr.Any{ret})...)
	for _, ip := range v6 {
		b.rule(t, name, cat(proto(ethIPv6), net(8, ip.AsSlice()), []expr.Any{ret})...)
	}
	b.rule(t, name, cat(proto(ethIPv6), net(8, make([]byte, 16)), l4(58), []expr.Any{ret})...)
	b.rule(t, name, drop)
}

var linkLocalPrefix = netip.MustParsePrefix("fe80::/64")

// linkLocal is the IPv6 link-local address the kernel derives from mac
// (modified EUI-64).
func linkLocal(mac []byte) netip.Addr {
	return network.SLAACAddress(linkLocalPrefix, network.MAC(mac))
}

// grown reports whether want holds every address of had.
func grown(had, want []netip.Addr) bool {
	for _, a := range had {
		if !slices.Contains(want, a) {
			return false
		}
	}
	return true
}
