package fence

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pair is a loopback TCP connection: the client end and the server end.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestWriteAfterFenceWritesNothingAndCloses(t *testing.T) {
	var may atomic.Bool
	may.Store(true)
	var logs bytes.Buffer
	f := New(may.Load, slog.New(slog.NewTextHandler(&logs, nil)))
	client, server := pair(t)
	c := f.Wrap(client)

	if _, err := c.Write([]byte("before\n")); err != nil {
		t.Fatalf("write while holding: %v", err)
	}
	may.Store(false)
	n, err := c.Write([]byte("after\n"))
	if n != 0 || !errors.Is(err, ErrFenced) {
		t.Fatalf("write after the flip = %d, %v; want 0, ErrFenced", n, err)
	}
	if _, err := c.Write([]byte("again\n")); !errors.Is(err, ErrFenced) {
		t.Fatalf("second refused write: %v", err)
	}
	// The peer gets what was written before the flip, then end of stream:
	// the connection was closed, and nothing after the flip reached it.
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatalf("peer read: %v (the fenced connection was not closed)", err)
	}
	if string(got) != "before\n" {
		t.Fatalf("peer received %q, want only %q", got, "before\n")
	}
	if w := strings.Count(logs.String(), "level=WARN"); w != 1 {
		t.Fatalf("%d warnings for one loss, want 1:\n%s", w, logs.String())
	}

	// Holding again and losing again warns again.
	may.Store(true)
	if err := f.Check(); err != nil {
		t.Fatalf("check while holding again: %v", err)
	}
	may.Store(false)
	if err := f.Check(); !errors.Is(err, ErrFenced) {
		t.Fatalf("check after the second loss: %v", err)
	}
	if w := strings.Count(logs.String(), "level=WARN"); w != 2 {
		t.Fatalf("%d warnings for two losses, want 2:\n%s", w, logs.String())
	}
}

func TestNilFenceAllows(t *testing.T) {
	f := New(nil, nil)
	if f != nil {
		t.Fatal("New(nil) should be the nil fence")
	}
	client, server := pair(t)
	if c := f.Wrap(client); c != client {
		t.Fatal("the nil fence wrapped the connection")
	}
	if err := f.Check(); err != nil {
		t.Fatalf("nil fence refused: %v", err)
	}
	if _, err := f.Wrap(client).Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(server, b); err != nil || b[0] != 'x' {
		t.Fatalf("peer read %q, %v", b, err)
	}
}

func TestCheckDialIsADialError(t *testing.T) {
	f := New(func() bool { return false }, slog.New(slog.DiscardHandler))
	err := f.CheckDial("tcp", "127.0.0.1:6667")
	var op *net.OpError
	if !errors.Is(err, ErrFenced) || !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("CheckDial = %#v; want a dial *net.OpError wrapping ErrFenced", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:6667") {
		t.Errorf("error %q does not name the address", err)
	}
}
