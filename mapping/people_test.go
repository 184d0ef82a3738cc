package mapping_test

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/mapping"
)

// rfc1459 folds as IRC servers do by default: A-Z[]\~ = a-z{}|^.
func rfc1459(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'A' <= r && r <= 'Z':
			return r + ('a' - 'A')
		case r == '[', r == ']', r == '\\':
			return r + ('{' - '[')
		case r == '~':
			return '^'
		}
		return r
	}, s)
}

var alice = mapping.Person{
	ID: "alice", Name: "Alice", Home: "matrix",
	Accounts: map[string]string{"libera": "Alice[m]", "jabber": "alice@example.org", "matrix": "@alice:example.org"},
}

func TestPeopleLookup(t *testing.T) {
	bob := mapping.Person{ID: "bob", Name: "Bob", Home: "devices", Accounts: map[string]string{"devices": "bobs-phone"}}
	p, err := mapping.NewPeople([]mapping.Person{alice, bob}, map[string]mapping.AccountKey{"libera": rfc1459})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		network, id, want string
	}{
		{"libera", "Alice[m]", "alice"},
		{"libera", "alice{M}", "alice"}, // the same IRC account
		{"libera", "alice", ""},
		{"jabber", "alice@example.org", "alice"},
		{"jabber", "Alice@example.org", ""}, // no key for jabber here: exact
		{"matrix", "@alice:example.org", "alice"},
		{"matrix", "@Alice:example.org", ""}, // Matrix ids are exact
		{"libera", "@alice:example.org", ""}, // another network's account
		{"devices", "bobs-phone", "bob"},
		{"devices", "", ""},
	} {
		per, ok := p.Lookup(tt.network, tt.id)
		if got := per.ID; got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q, %q) = %q, %v; want %q", tt.network, tt.id, got, ok, tt.want)
		}
	}
	if bp, ok := p.PersonOf("libera", "ALICE[M]"); !ok || bp.ID != "alice" || bp.Name != "Alice" || bp.Home != "matrix" {
		t.Errorf("PersonOf = %+v, %v", bp, ok)
	}
	if id, ok := p.Account("alice", "jabber"); !ok || id != "alice@example.org" {
		t.Errorf("Account(alice, jabber) = %q, %v", id, ok)
	}
	if id, ok := p.Account("bob", "jabber"); ok {
		t.Errorf("Account(bob, jabber) = %q: bob has none there", id)
	}
	if _, ok := p.Account("carol", "jabber"); ok {
		t.Error("an unknown person has an account")
	}
	if all := p.All(); len(all) != 2 || all[0].ID != "alice" || all[1].ID != "bob" {
		t.Errorf("All = %+v", all)
	}
	var none *mapping.People
	if _, ok := none.Lookup("libera", "alice"); ok {
		t.Error("a nil People knows someone")
	}
}

func TestPeopleReplaceKeepsTheOldSetOnError(t *testing.T) {
	p, err := mapping.NewPeople([]mapping.Person{alice}, map[string]mapping.AccountKey{"libera": rfc1459})
	if err != nil {
		t.Fatal(err)
	}
	mallory := mapping.Person{ID: "mallory", Accounts: map[string]string{"libera": "ALICE{M}"}}
	err = p.Replace([]mapping.Person{alice, mallory}, map[string]mapping.AccountKey{"libera": rfc1459})
	if err == nil || err.Error() != `people.mallory.accounts.libera: "ALICE{M}" is already an account of alice` {
		t.Fatalf("Replace with a claimed account: %v", err)
	}
	if per, ok := p.Lookup("libera", "alice[m]"); !ok || per.ID != "alice" {
		t.Errorf("after a failed Replace, alice's account is %q, %v", per.ID, ok)
	}
	if err := p.Replace([]mapping.Person{{ID: "bob", Accounts: map[string]string{"libera": "alice[m]"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if per, _ := p.Lookup("libera", "alice[m]"); per.ID != "bob" {
		t.Errorf("after Replace the account is %q's, want bob's", per.ID)
	}
	if _, ok := p.Lookup("libera", "Alice[M]"); ok {
		t.Error("without a key for libera, ids compare exactly")
	}
}
