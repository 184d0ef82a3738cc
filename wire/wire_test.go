package wire_test

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/wire"
)

// A person's events carry their id whichever account they wrote from;
// anyone else's carry none.
func TestEncodePerson(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC)
	for _, tt := range []struct {
		sender bridge.Sender
		want   string
	}{
		{
			bridge.Sender{Network: "libera", ID: "alice", Name: "Alice Liddell", Person: "alice", Home: "matrix"},
			`{"id":"E1","type":"message","network":"libera","room":"#lobby","sender":{"id":"alice","name":"Alice Liddell","person":"alice"},"text":"hi","via":"switchboard","ts":"2025-01-02T03:04:05.678Z"}`,
		},
		{
			bridge.Sender{Network: "matrix", ID: "@alice:example.org", Name: "Alice Liddell", Person: "alice", Home: "matrix"},
			`{"id":"E1","type":"message","network":"libera","room":"#lobby","sender":{"id":"@alice:example.org","name":"Alice Liddell","person":"alice"},"text":"hi","via":"switchboard","ts":"2025-01-02T03:04:05.678Z"}`,
		},
		{
			bridge.Sender{Network: "libera", ID: "alice", Name: "alice"},
			`{"id":"E1","type":"message","network":"libera","room":"#lobby","sender":{"id":"alice","name":"alice"},"text":"hi","via":"switchboard","ts":"2025-01-02T03:04:05.678Z"}`,
		},
	} {
		ev := &bridge.Message{Header: bridge.Header{ID: "E1", Origin: bridge.Origin{Network: "libera", Room: "#lobby"}, Sender: tt.sender, Time: at}, Text: "hi"}
		got, err := wire.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Encode =\n%s\nwant\n%s", got, tt.want)
		}
	}
}
