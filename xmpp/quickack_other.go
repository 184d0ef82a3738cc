//go:build !linux

package xmpp

import "net"

// quickACK is a no-op where TCP_QUICKACK does not exist.
func quickACK(c net.Conn) net.Conn { return c }
