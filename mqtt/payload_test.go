package mqtt

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestEscapeLevel(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alice", "alice"},
		{"", "%"},
		{"a/b", "a%2Fb"},
		{"a+b#c", "a%2Bb%23c"},
		{"100%", "100%25"},
		{"%", "%25"},
		{"nul\x00", "nul%00"},
		{"tab\tnl\n", "tab%09nl%0A"},
		{"del\x7f", "del%7F"},
		{"c1\u0085", "c1%C2%85"},
		{"bad\xffutf8", "bad%FFutf8"},
		{"nonchar\uffff", "nonchar%EF%BF%BF"},
		{"@alice:matrix.org", "@alice:matrix.org"},
		{"ünïcödé 🎉", "ünïcödé 🎉"},
		{"$SYS", "$SYS"}, // '$' only matters at the start of a whole topic
	} {
		got := EscapeLevel(c.in)
		if got != c.want {
			t.Errorf("EscapeLevel(%q) = %q, want %q", c.in, got, c.want)
		}
		back, err := UnescapeLevel(got)
		if err != nil || back != c.in {
			t.Errorf("UnescapeLevel(%q) = %q, %v; want %q", got, back, err, c.in)
		}
	}
}

func TestUnescapeLevelRejects(t *testing.T) {
	for _, s := range []string{"%2", "%zz", "a%", "%2f", "%%"} {
		if _, err := UnescapeLevel(s); err == nil {
			t.Errorf("UnescapeLevel(%q): no error", s)
		}
	}
}

func FuzzEscapeLevel(f *testing.F) {
	for _, s := range []string{"", "a/b", "%", "\x00", "\xff", "é", "+#", "%25"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := EscapeLevel(s)
		if e == "" || !utf8.ValidString(e) {
			t.Fatalf("EscapeLevel(%q) = %q: empty or invalid UTF-8", s, e)
		}
		for _, r := range e {
			if r != '%' && !topicRune(r) {
				t.Fatalf("EscapeLevel(%q) = %q contains %q", s, e, r)
			}
		}
		back, err := UnescapeLevel(e)
		if err != nil || back != s {
			t.Fatalf("round trip of %q: %q, %v", s, back, err)
		}
	})
}

func TestSplitInTopic(t *testing.T) {
	for _, c := range []struct {
		topic, room, device string
		ok                  bool
	}{
		{"chat/lobby/in/dev1", "chat/lobby", "dev1", true},
		{"lobby/in/dev1", "lobby", "dev1", true},
		{"a/in/b/in/dev", "a/in/b", "dev", true},
		{"chat/lobby/in/", "chat/lobby", "", true},
		{"chat/lobby/in/a/b", "", "", false},
		{"/in/dev", "", "", false},
		{"chat/lobby/out/x/y", "", "", false},
		{"chat", "", "", false},
	} {
		room, device, ok := splitInTopic(c.topic)
		if room != c.room || device != c.device || ok != c.ok {
			t.Errorf("splitInTopic(%q) = %q, %q, %v; want %q, %q, %v", c.topic, room, device, ok, c.room, c.device, c.ok)
		}
	}
}

func TestValidRoom(t *testing.T) {
	for _, ok := range []string{"chat/lobby", "lobby", "/leading", "a/in/b", "ünï"} {
		if err := ValidRoom(ok); err != nil {
			t.Errorf("ValidRoom(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "chat/+", "chat/#", "$SYS/x", "nul\x00", "bad\xff", "ctl\x01"} {
		if err := ValidRoom(bad); err == nil {
			t.Errorf("ValidRoom(%q): no error", bad)
		}
	}
}

func TestParsePayload(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Payload
		err  error
	}{
		{"hello", Payload{Text: "hello"}, nil},
		{"hello\r\n", Payload{Text: "hello"}, nil},
		{"  spaced  ", Payload{Text: "  spaced  "}, nil},
		{"not json}", Payload{Text: "not json}"}, nil},
		{"x {\"text\": \"y\"}", Payload{Text: "x {\"text\": \"y\"}"}, nil},
		{":-{ sad", Payload{Text: ":-{ sad"}, nil},
		{`"a json string"`, Payload{Text: `"a json string"`}, nil},
		{`[1,2]`, Payload{Text: `[1,2]`}, nil},
		{"42", Payload{Text: "42"}, nil},
		{`{"text":"hi"}`, Payload{Text: "hi", JSON: true}, nil},
		{` {"text":"hi","name":"Dev One","reply_to":"E1","id":"m-7","extra":[1]} `,
			Payload{Text: "hi", Name: "Dev One", ReplyTo: "E1", ID: "m-7", JSON: true}, nil},
		{`{"text":"hi","id":42}`, Payload{Text: "hi", ID: "42", JSON: true}, nil},
		{`{"text":"hi","id":"1.5"}`, Payload{Text: "hi", ID: "1.5", JSON: true}, nil},
		{`{"text":"hi","name":null,"id":null}`, Payload{Text: "hi", JSON: true}, nil},
		{`{"text":"hi","via":"another-bridge"}`, Payload{Text: "hi", JSON: true}, nil},
		{`{"text":"hi","via":"switchboard"}`, Payload{}, ErrLoop},
		{`{"type":"delete","via":"switchboard"}`, Payload{}, ErrLoop},
		{"", Payload{}, ErrMalformed},
		// Starting with "{" is JSON: what does not parse is dropped.
		{"{not json}", Payload{}, ErrMalformed},
		{`{"text": "J1 unterminated`, Payload{}, ErrMalformed},
		{" \r\n\t{\"text\": \"hi\"", Payload{}, ErrMalformed},
		{`{"text":"hi"} trailing`, Payload{}, ErrMalformed},
		{`{"text":"hi",}`, Payload{}, ErrMalformed},
		{"{", Payload{}, ErrMalformed},
		{"\r\n", Payload{}, ErrMalformed},
		{"bad\xff", Payload{}, ErrMalformed},
		{"{\"text\":\"bad\xff\"}", Payload{}, ErrMalformed},
		{`{}`, Payload{}, ErrMalformed},
		{`{"name":"x"}`, Payload{}, ErrMalformed},
		{`{"text":5}`, Payload{}, ErrMalformed},
		{`{"text":" "}`, Payload{}, ErrMalformed},
		{`{"text":"hi","name":1}`, Payload{}, ErrMalformed},
		{`{"text":"hi","reply_to":{}}`, Payload{}, ErrMalformed},
		{`{"text":"hi","id":1.5}`, Payload{}, ErrMalformed},
		{`{"text":"hi","id":true}`, Payload{}, ErrMalformed},
		{`{"text":"hi","via":7}`, Payload{}, ErrMalformed},
	} {
		got, err := ParsePayload([]byte(c.in))
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("ParsePayload(%q) error = %v, want %v", c.in, err, c.err)
			continue
		}
		if got != c.want {
			t.Errorf("ParsePayload(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParsePayloadErrorsDoNotQuote(t *testing.T) {
	for _, in := range []string{`{"text":"hi","name":"SECRET"`, `{"text":"SECRET","name":1}`, `{"text":{"SECRET":1}}`, `{"text": "x" SECRET}`, `{SECRET`} {
		_, err := ParsePayload([]byte(in))
		if err == nil {
			t.Errorf("ParsePayload(%q) accepted", in)
		} else if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "'S'") {
			t.Errorf("ParsePayload(%q) error quotes the payload: %v", in, err)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		"hello", "", "\xff", `{"text":"hi"}`, `{"text":"hi","id":42,"name":"n","reply_to":"r"}`,
		`{"via":"switchboard"}`, `{"text":1}`, `{`, `{"text":"a","id":1e3}`, "{\"text\":\"\\u0000\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePayload(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLoop) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if p != (Payload{}) {
				t.Fatalf("error with a payload: %+v", p)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted invalid UTF-8")
		}
		if strings.TrimSpace(p.Text) == "" {
			t.Fatalf("accepted an empty text")
		}
		for _, s := range []string{p.Text, p.Name, p.ReplyTo, p.ID} {
			if !utf8.ValidString(s) {
				t.Fatalf("field is invalid UTF-8: %q", s)
			}
		}
		if !p.JSON && (p.Name != "" || p.ReplyTo != "" || p.ID != "") {
			t.Fatalf("plain text with JSON fields: %+v", p)
		}
	})
}

func TestEncodeIsStable(t *testing.T) {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.FixedZone("CET", 3600))
	ev := &bridge.Message{
		Header: bridge.Header{ID: "E1", Origin: bridge.Origin{Network: "libera", Room: "#lobby"},
			Sender: bridge.Sender{Network: "libera", ID: "a/b", Name: "A"}, Time: ts},
		Text: "x < y & z",
	}
	topic, p1, err := Encode("chat/lobby", ev)
	if err != nil {
		t.Fatal(err)
	}
	_, p2, _ := Encode("chat/lobby", ev)
	if string(p1) != string(p2) {
		t.Fatalf("two encodings differ:\n%s\n%s", p1, p2)
	}
	if topic != "chat/lobby/out/libera/a%2Fb" {
		t.Errorf("topic = %q", topic)
	}
	want := `{"id":"E1","type":"message","network":"libera","room":"#lobby","sender":{"id":"a/b","name":"A"},"text":"x < y & z","via":"switchboard","ts":"2025-01-02T02:04:05.678Z"}`
	if string(p1) != want {
		t.Errorf("payload\n got %s\nwant %s", p1, want)
	}
}

// Names go out as text shows them (bridge.ShownName): a dashboard or the
// web chat that writes "<name> text" or "name joined" is not reordered
// by a bidi override; the id stays exact.
func TestEncodeShowsNames(t *testing.T) {
	ev := &bridge.Rename{
		Header:   bridge.Header{ID: "E1", Sender: bridge.Sender{Network: "libera", ID: "id\u202Ex", Name: "new\u202E\nname"}},
		Previous: "old\u2066 " + strings.Repeat("x", 60),
	}
	_, p, err := Encode("chat/lobby", ev)
	if err != nil {
		t.Fatal(err)
	}
	var o OutEvent
	if err := json.Unmarshal(p, &o); err != nil {
		t.Fatal(err)
	}
	if o.Sender.ID != "id\u202Ex" || o.Sender.Name != "new name" || o.Previous != "old "+strings.Repeat("x", bridge.MaxNameRunes-5)+"…" {
		t.Errorf("sender %+q, previous %+q", o.Sender, o.Previous)
	}
}
