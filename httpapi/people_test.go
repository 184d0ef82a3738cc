package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/config"
)

// A PUT's account may be a string or an object; a credential left out
// keeps the stored one only for the same account id, "" removes it.
func TestPersonInputKeepsSecretsLeftOut(t *testing.T) {
	cur := &config.Person{Name: "Alice", Home: "irc", Accounts: map[string]config.Account{
		"irc":    {ID: "alice", Password: "irc-pw"},
		"xmpp":   {ID: "alice@example.org", Password: "xmpp-pw"},
		"matrix": {ID: "@alice:example.org", Token: "mx-token"},
	}}
	var in PersonInput
	body := `{"name": "Alice L.", "home": "irc", "accounts": {
		"irc": "alice",
		"xmpp": {"id": "alice2@example.org"},
		"matrix": {"id": "@alice:example.org", "token": ""}
	}}`
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	got, err := in.Person("alice", cur)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Alice L." || got.Accounts["irc"].Password != "irc-pw" {
		t.Errorf("renamed person %+v: want the irc password kept", got)
	}
	if a := got.Accounts["xmpp"]; a.ID != "alice2@example.org" || a.Password != "" {
		t.Errorf("xmpp account %+v: a password must not move to another account", a)
	}
	if a := got.Accounts["matrix"]; a.Token != "" {
		t.Errorf("matrix account %+v: an empty token removes it", a)
	}
	if cur.Accounts["matrix"].Token != "mx-token" {
		t.Errorf("the current person was changed")
	}

	// What GET shows, sent back: the stored password stays; "set" for an
	// account with none is refused, naming the field.
	var back PersonInput
	if err := json.Unmarshal([]byte(`{"home": "irc", "accounts": {"irc": {"id": "alice", "password": "set"}, "xmpp": {"id": "alice@example.org", "password": "set"}}}`), &back); err != nil {
		t.Fatal(err)
	}
	if got, err := back.Person("alice", cur); err != nil || got.Accounts["irc"].Password != "irc-pw" || got.Accounts["xmpp"].Password != "xmpp-pw" {
		t.Errorf("GET's view sent back: %+v, %v; want the stored passwords kept", got, err)
	}
	var none PersonInput
	if err := json.Unmarshal([]byte(`{"home": "irc", "accounts": {"irc": {"id": "bob", "password": "set"}}}`), &none); err != nil {
		t.Fatal(err)
	}
	if _, err := none.Person("alice", cur); err == nil || !strings.Contains(err.Error(), "people.alice.accounts.irc.password") {
		t.Errorf(`"set" for an account with no stored password: %v, want an error naming the field`, err)
	}

	if err := json.Unmarshal([]byte(`{"accounts": {"irc": {"id": "a", "pasword": "x"}}}`), &in); err == nil || !strings.Contains(err.Error(), "pasword") {
		t.Errorf("a misspelt key: %v, want it refused by name", err)
	}
}

// PersonView never carries a secret's value.
func TestPersonViewHidesSecrets(t *testing.T) {
	p := &config.Person{Name: "Alice", Home: "irc", Accounts: map[string]config.Account{
		"irc":    {ID: "alice", Password: "irc-pw"},
		"web":    {ID: "alice", Token: "web-token"},
		"matrix": {ID: "@alice:example.org", DoublePuppet: true},
		"mqtt":   {ID: "alices-phone"},
	}}
	b, err := json.Marshal(PersonView("alice", p, "runtime", nil))
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{"irc-pw", "web-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("the view %s shows a secret", out)
		}
	}
	for _, want := range []string{`"irc":{"id":"alice","password":"set"}`, `"web":{"id":"alice","token":"set"}`,
		`"matrix":{"id":"@alice:example.org","double_puppet":true}`, `"mqtt":{"id":"alices-phone"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("the view %s lacks %s", out, want)
		}
	}
}

// away_after is a duration in a PUT, refused by name otherwise.
func TestPersonInputAway(t *testing.T) {
	var in PersonInput
	if err := json.Unmarshal([]byte(`{"accounts": {"irc": "alice"}, "away_after": "45m", "away_message": "lunch"}`), &in); err != nil {
		t.Fatal(err)
	}
	if got, err := in.Person("alice", nil); err != nil || got.AwayAfter != 45*time.Minute || got.AwayMessage != "lunch" {
		t.Errorf("%+v, %v", got, err)
	}
	in.AwayAfter = "soon"
	if _, err := in.Person("alice", nil); err == nil || err.Error() != `people.alice.away_after: want a duration such as 30m, got "soon"` {
		t.Errorf("away_after soon: %v", err)
	}
}
