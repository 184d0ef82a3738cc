package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A type's account rules, as a protocol package gives them: which
// credentials, how ids compare, what else it refuses, each problem at
// its path.
func init() {
	RegisterType(NetworkType{
		Name: "fakeacc", Config: func() Section { return new(fakeSection) },
		Example: "  g:\n    type: fakeacc\n",
		Accounts: &AccountRules{
			Credentials: []string{"token"},
			Key:         strings.ToLower,
			Check: func(p *Problems, a Account, n *Network) {
				if strings.HasPrefix(a.ID, "bad") {
					p.Add("", "a %s account never starts with bad (network server %s)", n.Type, n.Section.(*fakeSection).Server)
				}
			},
		},
	})
}

const peopleNetworks = `
networks:
  f: {type: fake, server: "h:1"}
  g: {type: fakeacc, server: "h:2"}
`

func TestPeopleAccountRules(t *testing.T) {
	_, err := ParseEnv([]byte(peopleNetworks+`
people:
  ann: {home: g, accounts: {g: {id: Ann, token: t}, f: ann}}
  bea: {accounts: {g: ANN}}
  cid: {accounts: {g: badger, f: {id: cid, token: t}}, home: f}
  dee: {accounts: {g: {id: dee, password: p}}}
`), nil)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, w := range []string{
		`people.bea.accounts.g: "ANN" is already an account of ann (as "Ann")`,
		`people.cid.accounts.f.token: fake accounts take no credentials (identity only)`,
		`people.cid.accounts.g: a fakeacc account never starts with bad (network server h:2)`,
		`people.dee.accounts.g.password: fakeacc accounts take token only`,
	} {
		if !slices.Contains(lines, w) {
			t.Errorf("error lacks\n\t%s\ngot\n\t%s", w, strings.Join(lines, "\n\t"))
		}
	}
	if len(lines) != 4 {
		t.Errorf("%d problems, want 4:\n\t%s", len(lines), strings.Join(lines, "\n\t"))
	}

	c, err := ParseEnv([]byte(peopleNetworks+`
people:
  ann: {home: g, accounts: {g: {id: Ann, token: t}, f: ann}}
  bea: {accounts: {f: Ann}}
`), nil)
	if err != nil {
		t.Fatal(err) // on a network without a Key, Ann and ann are two accounts
	}
	people, keys := c.PeopleMapping()
	if len(people) != 2 || people[0].ID != "ann" || people[0].Accounts["g"] != "Ann" || people[1].Home != "f" || people[1].Name != "bea" {
		t.Errorf("people %+v", people)
	}
	if k := keys["g"]; k == nil || k("ANN") != "ann" || keys["f"] != nil {
		t.Errorf("keys %v: want g's alone", keys)
	}
	if got := c.People["ann"].Accounts["g"].Credentials(); !slices.Equal(got, []string{"token"}) {
		t.Errorf("credentials %v", got)
	}
}

// away_after and away_message default, and are checked with their path.
func TestPeopleAway(t *testing.T) {
	c, err := ParseEnv([]byte(peopleNetworks+`
people:
  ann: {accounts: {f: ann}}
  bea: {accounts: {f: bea}, away_after: 2s, away_message: "gone fishing"}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := c.People["ann"], c.People["bea"]; a.AwayAfter != 30*time.Minute || a.AwayMessage != "Away" || b.AwayAfter != 2*time.Second || b.AwayMessage != "gone fishing" {
		t.Errorf("ann %v %q, bea %v %q", a.AwayAfter, a.AwayMessage, b.AwayAfter, b.AwayMessage)
	}
	_, err = ParseEnv([]byte(peopleNetworks+`
people:
  ann: {accounts: {f: ann}, away_after: 500ms, away_message: "gone\nQUIT"}
  bea: {accounts: {f: bea}, away_after: -1m, away_message: "`+strings.Repeat("x", 201)+`"}
`), nil)
	want := []string{
		`people.ann.away_after: want at least 1s, got 500ms`,
		`people.ann.away_message: contains a line break or control character`,
		`people.bea.away_after: want at least 1s, got -1m0s`,
		`people.bea.away_message: at most 200 bytes, got 201`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got %v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}
