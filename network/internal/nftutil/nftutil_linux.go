package nftutil

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// New returns an nftables connection whose netlink sockets open in the
// network namespace of the descriptor fd (held open by the caller for the
// connection's life).
//
// Its sockets have large buffers (forced, as nft does), so that one batch,
// thus one transaction, can hold thousands of rules and their
// acknowledgements.
func New(fd int) (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(fd), nftables.WithSockOptions(bigBuffers))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

const sockBuffer = 64 << 20

func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuffer),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sockBuffer))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("netlink socket buffers: %w", serr)
	}
	return nil
}

var setIDs atomic.Uint32

// SetID returns a batch-local set ID, unique within the process, for a set
// created and referenced in the same batch. (google/nftables' own counter
// is shared by all connections without a lock.)
func SetID() uint32 { return setIDs.Add(1) }

// DeleteTable queues the deletion of table t whether or not it exists (an
// add of an existing table is a no-op, so add then delete never fails on a
// missing table).
func DeleteTable(c *nftables.Conn, t *nftables.Table) {
	c.AddTable(t)
	c.DelTable(t)
}

// TableExists reports whether the table name of family exists.
func TableExists(c *nftables.Conn, family nftables.TableFamily, name string) (bool, error) {
	ts, err := c.ListTablesOfFamily(family)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// Physdev bits of struct xt_physdev_info (linux/netfilter/xt_physdev.h).
const (
	physdevOpIn      = 0x01
	physdevOpOut     = 0x02
	physdevOpBridged = 0x04
	ifnamsiz         = 16
)

// Physdev returns the xtables physdev match (through nf_tables' compat
// layer) of bridged packets that entered the bridge on port in and/or leave
// it on port out. Under br_netfilter the IPv4 and IPv6 hooks see the bridge
// as the input and output device; only this match sees the bridge ports.
// It works in the ip and ip6 families (not inet).
func Physdev(in, out string) *expr.Match {
	b := make([]byte, 72) // XT_ALIGN(sizeof(struct xt_physdev_info)) = XT_ALIGN(66)
	bits := byte(physdevOpBridged)
	if in != "" {
		copy(b[0:ifnamsiz], in)
		for i := 0; i <= len(in) && i < ifnamsiz; i++ {
			b[ifnamsiz+i] = 0xff
		}
		bits |= physdevOpIn
	}
	if out != "" {
		copy(b[2*ifnamsiz:3*ifnamsiz], out)
		for i := 0; i <= len(out) && i < ifnamsiz; i++ {
			b[3*ifnamsiz+i] = 0xff
		}
		bits |= physdevOpOut
	}
	b[4*ifnamsiz+1] = bits
	info := xt.Unknown(b)
	return &expr.Match{Name: "physdev", Rev: 0, Info: &info}
}

// IfName returns name as an nf_tables interface-name key (16 bytes, NUL
// padded).
func IfName(name string) []byte {
	b := make([]byte, ifnamsiz)
	copy(b, name)
	return b
}

// Verdict returns a verdict expression.
func Verdict(kind expr.VerdictKind) *expr.Verdict { return &expr.Verdict{Kind: kind} }

// Jump returns a jump to chain.
func Jump(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

// MetaEq matches a meta key against data.
func MetaEq(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// PayloadCmp compares len bytes at offset of base with data.
func PayloadCmp(base expr.PayloadBase, offset uint32, op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: uint32(len(data))},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}
}

// PrefixMatch matches the address of len(p.Addr()) bytes at offset of the
// network header against the prefix p (nothing for a /0).
func PrefixMatch(offset uint32, p netip.Prefix) []expr.Any {
	if p.Bits() == 0 {
		return nil
	}
	addr := p.Masked().Addr().AsSlice()
	n := uint32(len(addr))
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n}}
	if p.Bits() < int(n)*8 {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr})
}

// Port returns a 16-bit port in network byte order.
func Port(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// GenID returns the nf_tables ruleset generation of the namespace of fd:
// every committed transaction increments it by one.
func GenID(fd int) (uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: fd})
	if err != nil {
		return 0, fmt.Errorf("netlink: %w", err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("nftables getgen: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, errors.New("nftables getgen: no generation in the answer")
}
