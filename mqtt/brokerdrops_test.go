package mqtt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
)

// The broker's count is followed as it reports it; each rise is warned
// about once, with what it added, and a broker restart starts it again.
func TestBrokerDropsFollowTheBrokersCount(t *testing.T) {
	var logged bytes.Buffer
	ad, err := New("devices", &config.Network{Section: &Config{Broker: "tcp://127.0.0.1:1"}}, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	if _, ok := a.BrokerDropped(); ok {
		t.Fatal("a count before the broker reported one")
	}
	for _, step := range []struct {
		payload string
		want    uint64
		warned  string // the dropped= of a new warning, "" for none
	}{
		{"0", 0, ""},
		{"5", 5, "dropped=5 "},
		{"5", 5, ""},
		{" 12\n", 12, "dropped=7 "},
		{"not a number", 12, ""},
		{"3", 3, "dropped=3 "}, // the broker restarted
	} {
		logged.Reset()
		a.brokerDropped([]byte(step.payload))
		if n, ok := a.BrokerDropped(); !ok || n != step.want {
			t.Errorf("after %q: count %d (%v), want %d", step.payload, n, ok, step.want)
		}
		line := logged.String()
		switch {
		case step.warned == "" && line != "":
			t.Errorf("after %q: logged %s", step.payload, line)
		case step.warned != "" && (!strings.Contains(line, step.warned) || !strings.Contains(line, "max_queued_messages")):
			t.Errorf("after %q: logged %q, want a warning with %s naming max_queued_messages", step.payload, line, step.warned)
		}
	}
}
