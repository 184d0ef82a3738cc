// Package quickack has the connections Switchboard reads chat servers on
// acknowledge what they read at once.
package quickack

import (
	"net"
	"syscall"
)

// Wrap wraps a TCP connection so that what it reads is acknowledged at
// once. Prosody (and other servers) send with Nagle's algorithm by
// default: a stanza waits until the one before is acknowledged. We send
// nothing back on a component stream for most stanzas, so Linux delayed
// those ACKs by its 40 ms minimum, and at a steady 200 stanzas a second
// every eighth or so waited 40 ms and the ones behind it came in a clump
// (p90 37 ms against 2.5 ms; BenchmarkRelayXMPPToIRCPuppet/Bot). An IRC
// bot that only listens is in the same place.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickACKConn{Conn: c, rc: rc}
}

type quickACKConn struct {
	net.Conn
	rc syscall.RawConn
}

func (c *quickACKConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		// Linux clears TCP_QUICKACK again as it goes: set it after each
		// read, which also sends an ACK held back for what was read.
		c.rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
