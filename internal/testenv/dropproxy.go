package testenv

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DropProxy is a fault injector in front of a real server: it accepts a
// client, connects it to the server, relays both ways, and closes both
// sides as soon as what the server sent so far satisfies Drop: a server
// that accepts a connection and drops it right away.
type DropProxy struct {
	Addr string // 127.0.0.1:PORT, for clients

	accepted atomic.Int64
	dropped  atomic.Int64
}

// MQTTConnAck is a DropProxy condition: the broker accepted the session
// (a CONNACK, whose return code is 0).
func MQTTConnAck(fromServer []byte) bool {
	return len(fromServer) >= 4 && fromServer[0] == 0x20 && fromServer[3] == 0
}

// IRCWelcome is a DropProxy condition: the server welcomed the client
// (001), that is, registration succeeded.
func IRCWelcome(fromServer []byte) bool {
	return bytes.Contains(fromServer, []byte(" 001 "))
}

// XMPPComponentAccepted is a DropProxy condition: the server accepted a
// component's handshake (XEP-0114), which is sent in the clear.
func XMPPComponentAccepted(fromServer []byte) bool {
	return bytes.Contains(fromServer, []byte("<handshake"))
}

// NewDropProxy listens on a free loopback port and relays to upstream,
// until the test ends.
func NewDropProxy(t testing.TB, upstream string, drop func(fromServer []byte) bool) *DropProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("drop proxy: %v", err)
	}
	p := &DropProxy{Addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			open[c] = true
		} else {
			delete(open, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.relay(client, upstream, drop, track)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *DropProxy) relay(client net.Conn, upstream string, drop func([]byte) bool, track func(net.Conn, bool)) {
	track(client, true)
	defer track(client, false)
	defer client.Close()
	server, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	track(server, true)
	defer track(server, false)
	defer server.Close()
	go func() {
		io.Copy(server, client)
		server.Close()
	}()
	var seen []byte
	buf := make([]byte, 4096)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			seen = append(seen, buf[:n]...)
			if drop(seen) {
				p.dropped.Add(1)
				return // the deferred closes drop both sides
			}
		}
		if err != nil {
			return
		}
	}
}

// ExpectDropped lets a client that was just started reconnect for d,
// then checks that the server accepted, and the proxy dropped, between lo
// and hi of its connections: enough to show it reconnects, few enough to
// show it backs off.
func (p *DropProxy) ExpectDropped(t testing.TB, d time.Duration, lo, hi int) {
	t.Helper()
	time.Sleep(d)
	got := p.Dropped()
	t.Logf("connections accepted and dropped in %v: %d", d, got)
	if got < lo || got > hi {
		t.Errorf("%d connections accepted and dropped in %v, want %d to %d", got, d, lo, hi)
	}
}

// Accepted is how many connections clients made to the proxy.
func (p *DropProxy) Accepted() int { return int(p.accepted.Load()) }

// Dropped is how many of them the server accepted before the proxy
// dropped them.
func (p *DropProxy) Dropped() int { return int(p.dropped.Load()) }
