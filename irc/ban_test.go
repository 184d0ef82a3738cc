package irc

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestParseModes(t *testing.T) {
	info := defaultServerInfo(512)
	info.chanModes, info.prefixModes, info.prefixes = "IXbeg,k,Hfjl,ACKMNOPQRSTcimnprstuz", "qaohv", "~&@%+"
	got := parseModes([]string{"+bo-l+k-b", "a!*@*", "op", "key", "c!*@*"}, info)
	want := []modeChange{{true, 'b', "a!*@*"}, {true, 'o', "op"}, {false, 'l', ""}, {true, 'k', "key"}, {false, 'b', "c!*@*"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// Too few parameters: the rest get none, nothing panics.
	if got := parseModes([]string{"+bb", "x!*@*"}, info); len(got) != 2 || got[1].param != "" {
		t.Errorf("got %+v", got)
	}
}

func TestMaskMatches(t *testing.T) {
	for _, c := range []struct {
		mask, nuh string
		cm        caseMapping
		want      bool
	}{
		{"spammer[devices]!*@*", "spammer[devices]!sb@127.0.0.1", caseRFC1459, true},
		{"SPAMMER{devices}!*@*", "spammer[devices]!sb@127.0.0.1", caseRFC1459, true}, // [ is { in rfc1459
		{"SPAMMER{devices}!*@*", "spammer[devices]!sb@127.0.0.1", caseASCII, false},
		{"*!*@127.0.0.?", "x!sb@127.0.0.1", caseRFC1459, true},
		{"*!*@10.*", "x!sb@127.0.0.1", caseRFC1459, false},
		{"m:spammer*!*@*", "spammer[devices]!sb@127.0.0.1", caseRFC1459, false}, // an extban
		{"~q:*", "spammer!sb@127.0.0.1", caseRFC1459, false},
		{"*!*@::1", "x!sb@::1", caseRFC1459, true}, // IPv6 host: not an extban
	} {
		if got := maskMatches(c.cm, c.mask, c.nuh); got != c.want {
			t.Errorf("maskMatches(%v, %q, %q) = %v, want %v", c.cm, c.mask, c.nuh, got, c.want)
		}
	}
}

func TestBannedRefusal(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("irc: cannot join #a: %w", &refusal{code: "474", text: "Cannot join channel (you're banned)", join: true}), true},
		{fmt.Errorf("irc: cannot join #a: %w", &refusal{code: "473", text: "Cannot join channel (invite only)", join: true}), false},
		{fmt.Errorf("irc: send: %w", &refusal{code: "404", text: "You cannot send messages to this channel whilst banned."}), true},
		{fmt.Errorf("irc: send: %w", &refusal{code: "404", text: "Cannot send to channel (+m)"}), false},
		{errors.New("474"), false},
		{nil, false},
	} {
		if got := bannedRefusal(c.err); got != c.want {
			t.Errorf("bannedRefusal(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
