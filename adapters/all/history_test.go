package all_test

import (
	"log/slog"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/config"
)

// Only the web page and Matrix (its new portal rooms) show newcomers the
// link's history: an XMPP MUC and an IRC channel keep their own, and an
// MQTT device reads the stream; none is ever fed it again.
func TestHistoryUsers(t *testing.T) {
	cfg, err := config.Parse([]byte(peopleNets))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"libera": false, "jabber": false, "matrix": true, "devices": false, "web": true}
	for name, n := range cfg.Networks {
		a, err := adapters.New(name, n, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := a.(adapters.HistoryUser); ok != want[name] {
			t.Errorf("%s (%s) takes the history: %v, want %v", name, n.Type, ok, want[name])
		}
	}
}
