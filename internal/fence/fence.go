// Package fence keeps an instance that no longer holds a network's lease
// (cluster mode, issue 26) from speaking for it: the IRC, XMPP and MQTT
// adapters wrap every connection they dial with it (adapters.Fenced).
//
// Engineering note: why the check is at write time, on the socket. The
// lease is safe only if nothing goes out once MaySend has turned false
// (cluster/doc.go: the holder stops a margin before anyone else can
// acquire). Checking where a delivery starts is too early: between the
// router handing a line to an adapter and its bytes leaving, the line can
// wait in a flood-control bucket (IRC: seconds per line on a busy
// connection), in a library's write queue (ircevent, paho), or in a
// process that was frozen (SIGSTOP, a stalled VM) and resumes after the
// lease passed to another instance. The last moment this process
// controls is the Write on the net.Conn under the protocol library, which
// every line, PONG, JOIN and QUIT goes through; so the check is there,
// and a refused Write writes nothing, closes the connection (the server
// ends the session: the nick, component or client id is freed for the
// new holder) and fails, so the library gives the connection up. What the
// check cannot cover is the time from the check to the server reading
// the bytes (kernel buffers, the network): that is what the lease's
// margin is for.
//
// Dialing is fenced too (CheckDial). What a new connection would write
// first (the bot's NICK, the XMPP component handshake that Prosody's
// kick_old would let take the component over, the MQTT CONNECT that
// takes the client id's session from its holder) would be refused by the
// write fence anyway, but a fenced instance opens no connection at all:
// each counts against the server's limit per address, and none can be
// used. The adapters' reconnect loops keep their backoff, so a fenced
// adapter retries slowly until the service stops it.
//
// Reads are not fenced: what the server sent is not this instance
// speaking, and dropping it could lose lines the new holder never saw.
// A fenced connection with nothing to write (not even a PONG) stays open
// until the service stops the adapter; the first write closes it. Where
// the fence sits above TLS (IRC, mqtts), closing lets the TLS layer send
// its close alert, which carries nothing of the bridge's.
package fence

import (
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
)

// ErrFenced is the error of a write or dial refused because this
// instance no longer holds the network.
var ErrFenced = errors.New("this instance no longer holds the network (cluster lease lost or expiring)")

// Fence answers, before each write, whether this instance may still
// speak for its network. A nil *Fence allows everything (one instance,
// no cluster).
type Fence struct {
	may    func() bool
	log    *slog.Logger
	fenced atomic.Bool // refused since it last allowed: log once per loss
}

// New returns a fence that asks may before each write; nil when may is
// nil. log receives one warning each time the fence starts refusing.
func New(may func() bool, log *slog.Logger) *Fence {
	if may == nil {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	return &Fence{may: may, log: log}
}

// Check returns nil if this instance may speak for the network now, else
// ErrFenced.
func (f *Fence) Check() error {
	if f == nil {
		return nil
	}
	if f.may() {
		if f.fenced.Load() {
			f.fenced.Store(false)
		}
		return nil
	}
	if f.fenced.CompareAndSwap(false, true) {
		f.log.Warn("this instance no longer holds the network: closing its connections and sending nothing more")
	}
	return ErrFenced
}

// CheckDial is Check for a connection about to be dialed to addr: nil,
// or a *net.OpError (Op "dial") that errors.Is ErrFenced. A dial error,
// like an unreachable server's, so that callers retry later rather than
// take it for the server's refusal.
func (f *Fence) CheckDial(network, addr string) error {
	if err := f.Check(); err != nil {
		return &net.OpError{Op: "dial", Net: network, Addr: fencedAddr(addr), Err: err}
	}
	return nil
}

// fencedAddr names the address a refused dial was for.
type fencedAddr string

func (a fencedAddr) Network() string { return "fence" }
func (a fencedAddr) String() string  { return string(a) }

// Wrap returns c with Check before every Write; c itself for a nil
// fence. A refused Write writes nothing, closes c and returns an error
// that errors.Is ErrFenced.
func (f *Fence) Wrap(c net.Conn) net.Conn {
	if f == nil {
		return c
	}
	return &conn{Conn: c, f: f}
}

type conn struct {
	net.Conn
	f *Fence
}

func (c *conn) Write(b []byte) (int, error) {
	if err := c.f.Check(); err != nil {
		c.Conn.Close()
		return 0, &net.OpError{Op: "write", Net: "fence", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return c.Conn.Write(b)
}
