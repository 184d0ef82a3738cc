package matrix

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestHistoryNotice(t *testing.T) {
	at := time.Date(2026, 1, 2, 16, 4, 59, 0, time.FixedZone("CET", 3600))
	bob := bridge.Sender{Network: "libera", ID: "bob", Name: "bob"}
	for _, tc := range []struct {
		m    bridge.Message
		want string
	}{
		{bridge.Message{Header: bridge.Header{Sender: bob, Time: at}, Text: "hi all"}, "[2026-01-02 15:04 UTC] bob: hi all"},
		{bridge.Message{Header: bridge.Header{Sender: bob, Time: at}, Text: "waves", Emote: true}, "[2026-01-02 15:04 UTC] * bob waves"},
		{bridge.Message{Header: bridge.Header{Sender: bob, Time: at}, Text: "look",
			Attachments: []bridge.Attachment{{URL: "https://example.org/a.png", Name: "a.png"}}},
			"[2026-01-02 15:04 UTC] bob: look\na.png: https://example.org/a.png"},
	} {
		if got := historyNotice(&tc.m); got != tc.want {
			t.Errorf("notice %q, want %q", got, tc.want)
		}
	}
}
