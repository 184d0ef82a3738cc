package service

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/irc"
)

// longText is n bytes of text in words and lines, with multibyte runes
// and lines longer than an IRC line, so that cuts fall inside lines.
func longText(n int) string {
	var b strings.Builder
	words := []string{"grüße", "日本語テキスト", "🎉", "word", "lorem", "ipsum", strings.Repeat("long", 120)}
	for i := 0; ; i++ {
		w := words[i%len(words)] + fmt.Sprint(i)
		sep := " "
		if i%97 == 96 {
			sep = "\n"
		}
		if b.Len()+len(w)+len(sep)+len("end") > n {
			break
		}
		b.WriteString(w + sep)
	}
	b.WriteString(strings.Repeat("e", n-b.Len()))
	return b.String()
}

// Test 8: a 64 KiB device message reaches IRC as max_message_lines (5)
// lines, its beginning and a link through http.public_url to the whole
// text, byte for byte; a tampered link is refused; and, at the network's
// usual flood rate of a line a second, another device's message sent
// right after is not held behind it.
func TestLongMessageGoesOutCutWithALink(t *testing.T) {
	w := newWorld(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg, err := config.Parse([]byte(w.yaml("puppet", addr, "")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.PublicURL = "http://" + addr
	cfg.Networks["libera"].Section.(*irc.Config).Flood = irc.Flood{Burst: 5, Interval: time.Second}
	runSwitchboard(t, cfg)
	alice := w.human(t, "alice")

	text := longText(64 * 1024)
	w.publish(t, "sensor-1", text)
	sent := time.Now()
	w.publish(t, "sensor-2", "right after")
	alice.WaitText(patience, room, "sensor-2[devices]", "right after")
	if took := time.Since(sent); took > 10*time.Second {
		t.Errorf("the next device's message arrived %v after it was sent, behind the long one", took.Round(time.Millisecond))
	} else {
		t.Logf("the next device's message arrived after %v", took.Round(time.Millisecond))
	}

	// sensor-2's message may overtake the long one (another sender's
	// lane): the long one's last line, the marker, comes after.
	alice.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return strings.EqualFold(l.Nick(), "sensor-1[devices]") && strings.HasPrefix(l.Text(), "… (message cut: ")
	})
	lines := messages(alice, "sensor-1[devices]")
	if len(lines) != 5 {
		t.Fatalf("64 KiB arrived as %d lines, want 5: %.200q", len(lines), lines)
	}
	rest := text
	for _, l := range lines[:4] {
		rest = strings.TrimLeft(rest, " \n")
		if !utf8.ValidString(l) || !strings.HasPrefix(rest, l) {
			t.Fatalf("line %.60q is not where the text goes on (%.60q)", l, rest)
		}
		rest = rest[len(l):]
	}
	last := lines[4]
	prefix := "http://" + addr + "/text/"
	i := strings.Index(last, prefix)
	if !strings.HasPrefix(last, "… (message cut: ") || i < 0 || strings.ContainsRune(last[i:], ' ') {
		t.Fatalf("last line %q: want the cut marker and a link under %s", last, prefix)
	}
	link := last[i:]
	t.Logf("64 KiB as 5 lines, the last %q", last)

	resp, body := testenv.HTTP(t, http.MethodGet, link, "", nil)
	if resp.StatusCode != http.StatusOK || string(body) != text {
		t.Errorf("GET %s: %d, %d bytes; want 200 and the %d bytes sent", link, resp.StatusCode, len(body), len(text))
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/plain; charset=utf-8",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	// The signature is the segment before the event id.
	rel := strings.TrimPrefix(link, prefix)
	sig, id, _ := strings.Cut(rel, "/")
	for name, bad := range map[string]string{
		"signature": prefix + otherLast(sig) + "/" + id,
		"event id":  prefix + sig + "/" + otherLast(id),
		"no sig":    prefix + id,
	} {
		if resp, body := testenv.HTTP(t, http.MethodGet, bad, "", nil); resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "grüße") {
			t.Errorf("tampered %s (%s): %d, want 404", name, bad, resp.StatusCode)
		}
	}
}

// Test 9: without http.public_url, a long message is cut with a marker
// that says how much is left out.
func TestLongMessageCutWithoutPublicURL(t *testing.T) {
	w := newWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	alice := w.human(t, "alice")
	var in []string
	for i := 1; i <= 20; i++ {
		in = append(in, fmt.Sprintf("line %02d", i))
	}
	w.publish(t, "sensor-1", strings.Join(in, "\n"))
	w.publish(t, "sensor-1", "after")
	alice.WaitText(patience, room, "sensor-1[devices]", "after")
	want := []string{"line 01", "line 02", "line 03", "line 04", "… (message cut: 16 more lines)", "after"}
	if got := messages(alice, "sensor-1[devices]"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("alice saw %q, want %q", got, want)
	}
}

// otherLast is s with another last character.
func otherLast(s string) string {
	if strings.HasSuffix(s, "0") {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

// A long message's link answers 410 Gone once retention has removed the
// text. (That a deletion by its author removes it at once is checked in
// the store's tests: devices and IRC users cannot delete.)
func TestLongMessageLinkGoneWithItsText(t *testing.T) {
	every := retentionEvery
	retentionEvery = 100 * time.Millisecond
	t.Cleanup(func() { retentionEvery = every })
	w := newWorld(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg, err := config.Parse([]byte(w.yaml("puppet", addr, "retention: { messages: 4s, ids: 1h }")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.PublicURL = "http://" + addr
	runSwitchboard(t, cfg)
	alice := w.human(t, "alice")

	link := func(device, text string) string {
		t.Helper()
		w.publish(t, device, text)
		deadline := time.Now().Add(patience)
		for {
			if lines := messages(alice, device+"[devices]"); len(lines) == 5 {
				i := strings.Index(lines[4], "http://"+addr+"/text/")
				if i < 0 {
					t.Fatalf("last line %q: no link", lines[4])
				}
				return lines[4][i:]
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's long message did not arrive cut", device)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	gone := func(link string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			resp, _ := testenv.HTTP(t, http.MethodGet, link, "", nil)
			if resp.StatusCode == http.StatusGone {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %d, want 410 Gone", link, resp.StatusCode)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	text := longText(4000)
	// Past retention.messages.
	kept := link("sensor-1", text)
	if resp, _ := testenv.HTTP(t, http.MethodGet, kept, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200 while the text is kept", kept, resp.StatusCode)
	}
	gone(kept, patience)
}
