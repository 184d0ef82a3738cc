package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Until the bridge has subscribed, the embedded broker turns devices away
// with "server unavailable" (they retry, as after a broker restart)
// instead of accepting messages nobody would receive.
func TestBrokerKeepsDevicesOutUntilOpened(t *testing.T) {
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	srv, open, err := startBroker(listen, t.TempDir(), []string{"switchboard-local"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeBroker(context.Background(), srv, slog.New(slog.DiscardHandler))
	connect := func(id string) error {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + listen).SetClientID(id).SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("connect of %s timed out", id)
		}
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return tok.Error()
	}
	err = connect("device-1")
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unavailable") {
		t.Fatalf("device before the bridge subscribed: %v, want server unavailable", err)
	}
	if err := connect("switchboard-local"); err != nil {
		t.Fatalf("the bridge's own client was refused: %v", err)
	}
	open()
	if err := connect("device-1"); err != nil {
		t.Fatalf("device after opening: %v", err)
	}
}

// A broker whose Close blocks (mochi can deadlock there, see closeBroker)
// does not hold up stopping.
func TestBrokerCloseNeverHangs(t *testing.T) {
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	srv, _, err := startBroker(listen, t.TempDir(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.Clients.Lock() // as a disconnect racing Close would hold it
	defer srv.Clients.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	closeBroker(ctx, srv, slog.New(slog.DiscardHandler))
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("closing a stuck broker took %v", took)
	}
}

func TestOnBroker(t *testing.T) {
	for _, c := range []struct {
		url, listen string
		want        bool
	}{
		{"tcp://127.0.0.1:1883", "127.0.0.1:1883", true},
		{"tcp://localhost:1883", "localhost:1883", true},
		{"tcp://127.0.0.1:1883", ":1883", true},
		{"tcp://localhost:1883", "0.0.0.0:1883", true},
		{"tcp://[::1]:1883", "[::]:1883", true},
		{"tcp://127.0.0.1:1884", "127.0.0.1:1883", false},
		{"tcp://10.0.0.5:1883", "127.0.0.1:1883", false},
		{"tcp://10.0.0.5:1883", ":1883", false},
		{"ssl://127.0.0.1:8883", "127.0.0.1:1883", false},
	} {
		if got := onBroker(c.url, c.listen); got != c.want {
			t.Errorf("onBroker(%q, %q) = %v, want %v", c.url, c.listen, got, c.want)
		}
	}
}
