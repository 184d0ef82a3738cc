package testenv

import (
	"strings"
	"testing"
	"time"
)

// TestAthemeSASL: an account registered through NickServ logs in with
// SASL PLAIN, and another user sees the login in the account tag of its
// messages and in WHOIS (330); a wrong password is refused.
func TestAthemeSASL(t *testing.T) {
	t.Parallel()
	s := Atheme(t)
	s.RegisterAccount(t, "alice", "correct-horse")

	bob := s.IRC.Client(t, "bob")
	bob.Join("#lobby")
	alice := s.Login(t, "alice", "alice", "correct-horse")
	alice.Join("#lobby")
	alice.Say("#lobby", "hello")
	l := bob.WaitText(10*time.Second, "#lobby", "alice", "hello")
	if ok, acc := l.GetTag("account"); !ok || acc != "alice" {
		t.Errorf("alice's message has account tag %q (present %v), want alice: %s", acc, ok, l.Raw)
	}
	from := bob.Len()
	bob.Send("WHOIS", "alice")
	w, err := bob.WaitFrom(from, 10*time.Second, func(l IRCLine) bool { return l.Command == "330" || l.Command == "318" })
	if err != nil || w.Command != "330" || len(w.Params) < 3 || w.Params[2] != "alice" {
		t.Errorf("WHOIS alice: %v %q, want 330 naming account alice", err, w.Raw)
	}

	// bob is not logged in: no account tag on his lines.
	bob.Say("#lobby", "hi")
	l = alice.WaitText(10*time.Second, "#lobby", "bob", "hi")
	if ok, acc := l.GetTag("account"); ok {
		t.Errorf("bob's message carries account %q", acc)
	}

	if _, err := s.IRC.connectClient(t, IRCClientConfig{Nick: "mallory", SASLUser: "alice", SASLPassword: "wrong"}); err == nil || !strings.Contains(err.Error(), "SASL") {
		t.Errorf("login with a wrong password: %v, want a SASL failure", err)
	}
}
