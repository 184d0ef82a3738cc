package bridge_test

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestWithAttachmentLines(t *testing.T) {
	atts := []bridge.Attachment{
		{URL: "https://files.example/a.png", Name: "a.png"},
		{URL: "https://files.example/b.pdf"},
		{URL: "https://files.example/c.txt", Name: "https://files.example/c.txt"},
		{URL: "https://files.example/shown.jpg", Name: "shown.jpg"},
		{Name: "no url"},
	}
	got := bridge.WithAttachmentLines("look: https://files.example/shown.jpg", atts)
	want := "look: https://files.example/shown.jpg\na.png: https://files.example/a.png\nhttps://files.example/b.pdf\nhttps://files.example/c.txt"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := bridge.WithAttachmentLines("", atts[:1]); got != "a.png: https://files.example/a.png" {
		t.Errorf("attachment alone: %q", got)
	}
}

// A body that only names its file (a Matrix image's body, a file from
// the web page) is said by the file's line: one line, not the name twice.
func TestBodyThatOnlyNamesItsFile(t *testing.T) {
	atts := []bridge.Attachment{{URL: "https://files.example/sunset.png", Name: "sunset.png"}}
	for body, want := range map[string]string{
		"sunset.png":                       "sunset.png: https://files.example/sunset.png",
		" sunset.png\n":                    "sunset.png: https://files.example/sunset.png",
		"look at sunset.png":               "look at sunset.png\nsunset.png: https://files.example/sunset.png",
		"":                                 "sunset.png: https://files.example/sunset.png",
		"https://files.example/sunset.png": "https://files.example/sunset.png",
	} {
		if got := bridge.WithAttachmentLines(body, atts); got != want {
			t.Errorf("%q: got %q, want %q", body, got, want)
		}
	}
}

func TestLateSince(t *testing.T) {
	now := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		said time.Time
		late bool
	}{{now.Add(-time.Hour), true}, {now.Add(-30 * time.Second), true}, {now.Add(-29 * time.Second), false}, {now, false}, {time.Time{}, false}} {
		m := &bridge.Message{Header: bridge.Header{Time: c.said}}
		if got := bridge.LateSince(m, now); got.IsZero() == c.late || c.late && !got.Equal(c.said) {
			t.Errorf("said %v: LateSince %v, want late %v", c.said, got, c.late)
		}
	}
}
