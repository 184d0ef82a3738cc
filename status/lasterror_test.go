package status

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The handler keeps each network's latest warning or error, with the
// network from the adapter's own logger rather than from attributes about
// something else, and passes every record on as the log level says.
func TestNetErrorsFromLog(t *testing.T) {
	var out bytes.Buffer
	errs := newNetErrors()
	log := slog.New(errs.handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})))
	irc := log.With("network", "libera") // as adapters.New does

	irc.Info("connected")
	if _, ok := errs.get("libera"); ok {
		t.Error("an Info record counted as a problem")
	}
	irc.Warn("connect failed", "server", "irc.example.org:6697", "err", errors.New("connection refused"))
	if le, ok := errs.get("libera"); !ok || le.Message != "connect failed: connection refused" || time.Since(le.Time) > time.Minute {
		t.Errorf("libera: %+v, %v; want the connect failure, just now", le, ok)
	}
	if strings.Contains(out.String(), "connect failed") {
		t.Errorf("a warning got past log level error: %q", out.String())
	}

	// A sender's network, in a record or a group, is not the logger's.
	irc.Error("puppet refused", "network", "devices")
	irc.WithGroup("puppet").With("network", "matrix").Error("kicked", "err", "banned")
	if _, ok := errs.get("devices"); ok {
		t.Error("a record's network attribute overrode the logger's")
	}
	if _, ok := errs.get("matrix"); ok {
		t.Error("a network attribute in a group counted")
	}
	if le, _ := errs.get("libera"); le.Message != "kicked: banned" {
		t.Errorf("libera: %q, want the latest, with the error from the group", le.Message)
	}
	if !strings.Contains(out.String(), "puppet.network=matrix") {
		t.Errorf("the group did not reach the next handler: %q", out.String())
	}

	// A line about a network, from a logger of none; an error added with With.
	log.Warn("stop network", "network", "devices", "err", "timeout")
	log.With("err", "broker gone").With("network", "mqtt").Error("disconnected")
	log.Error("no network here")
	if le, _ := errs.get("devices"); le.Message != "stop network: timeout" {
		t.Errorf("devices: %q", le.Message)
	}
	if le, _ := errs.get("mqtt"); le.Message != "disconnected: broker gone" {
		t.Errorf("mqtt: %q", le.Message)
	}

	irc.Warn("flood", "err", strings.Repeat("é", maxErrorLen))
	if le, _ := errs.get("libera"); len(le.Message) > maxErrorLen || !strings.HasSuffix(le.Message, "é…") {
		t.Errorf("long message: %d bytes, ends %q", len(le.Message), le.Message[len(le.Message)-8:])
	}
}

// The status page escapes whatever a network's error or a room's name
// holds.
func TestStatusPageEscapes(t *testing.T) {
	now := time.Now()
	age := 3.0
	st := Status{Time: now, Problems: []string{}, Networks: []Network{{
		Name: "libera", Type: "irc", State: "down", Since: now,
		LastError: &LastError{Message: `connect failed: <script>alert("x")</script> & more`, Time: now},
	}}, Links: []Link{{Name: "lobby", Rooms: []Room{{Room: "libera:#<b>", Depth: 2, Oldest: &now, Age: &age}}}}}
	var b bytes.Buffer
	if err := statusPage.Execute(&b, st); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, raw := range []string{"<script>", "<b>"} {
		if strings.Contains(page, raw) {
			t.Errorf("page has %q unescaped:\n%s", raw, page)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more", "libera:#&lt;b&gt;", "2 waiting, oldest 3s"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
}
