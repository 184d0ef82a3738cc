package all_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/config/configtest"
	"github.com/switchboard-chat/switchboard/mapping"
)

// peopleNets has a network of each type for the people tests.
const peopleNets = `
networks:
  libera: {type: irc, server: irc.example.org:6697, nick: switchboard}
  jabber: {type: xmpp, server: xmpp.example.org:5222, jid: bot@example.org, password: pw}
  matrix: {type: matrix, homeserver: https://matrix.example.org, domain: example.org, as_token: a, hs_token: h}
  devices: {type: mqtt, broker: tcp://127.0.0.1:1883}
  web: {type: webrtc}
`

func TestBadPeople(t *testing.T) {
	configtest.RunBad(t, []configtest.BadConfig{
		{
			Name: "unknown network",
			YAML: peopleNets + `
people:
  alice: {home: libera, accounts: {libera: alice, nope: alice}}
`,
			Want: []string{`people.alice.accounts.nope: no network "nope"`},
		},
		{
			Name: "an account claimed by two people",
			YAML: peopleNets + `
people:
  alice: {home: libera, accounts: {libera: "Alice[m]", jabber: alice@example.org}}
  bob: {accounts: {libera: "alice{M}"}}
  carol: {accounts: {jabber: ALICE@example.org}}
  dave: {accounts: {matrix: "@alice:example.org"}}
  erin: {accounts: {matrix: "@Alice:example.org"}}
`,
			Want: []string{
				// IRC accounts and JIDs compare without case, Matrix ids exactly.
				`people.bob.accounts.libera: "alice{M}" is already an account of alice (as "Alice[m]")`,
				`people.carol.accounts.jabber: "ALICE@example.org" is already an account of alice (as "alice@example.org")`,
			},
		},
		{
			Name: "home without an account",
			YAML: peopleNets + `
people:
  alice: {home: matrix, accounts: {libera: alice, jabber: alice@example.org}}
  bob: {accounts: {libera: bob, jabber: bob@example.org}}
`,
			Want: []string{
				`people.alice.home: alice has no account on "matrix" (want one of jabber, libera)`,
				`people.bob.home: required: the network of one of their accounts (jabber, libera)`,
			},
		},
		{
			// Home is where they read what Switchboard tells them and
			// their direct messages: not where Switchboard holds their
			// only client (issue 22).
			Name: "a home Switchboard holds",
			YAML: peopleNets + `
people:
  alice: {home: libera, accounts: {libera: {id: alice, password: p}, matrix: "@alice:example.org", jabber: {id: alice@example.org, password: p}}}
  bob: {accounts: {libera: {id: bob, password: p}}}
`,
			Want: []string{
				`people.alice.home: "libera": Switchboard holds their nick there (the account has a password), so direct messages to it reach Switchboard, not them; home must be a network where alice has a client of their own (want one of jabber, matrix)`,
				`people.bob.home: "libera": Switchboard holds their nick there (the account has a password), so direct messages to it reach Switchboard, not them; home must be a network where bob has a client of their own (they have no other: add an account of theirs Switchboard does not hold)`,
			},
		},
		{
			Name: "empty ids and no accounts",
			YAML: peopleNets + `
people:
  alice: {accounts: {libera: "", jabber: {password: x}, devices: "a b"}}
  bob: {name: Bob}
  carol:
  "dave.x": {accounts: {libera: dave}}
`,
			Want: []string{
				`people.alice.accounts.devices: account id "a b" contains a space or control character`,
				`people.alice.accounts.jabber: empty account id`,
				`people.alice.accounts.libera: empty account id`,
				`people.bob.accounts: required: at least one network: account`,
				`people.carol.accounts: required: at least one network: account`,
				`people.dave.x: invalid person id "dave.x" (want letters, digits, _ and -, at most 64)`,
			},
		},
		{
			Name: "credentials a network type does not take",
			YAML: peopleNets + `
people:
  alice:
    home: devices
    accounts:
      devices: {id: alices-phone, password: x}
      libera: {id: alice, token: t, password: p}
      jabber: {id: alice@example.org, double_puppet: true}
      web: {id: alice, password: p}
      matrix: {id: "@alice:example.org", password: p}
`,
			Want: []string{
				`people.alice.accounts.devices.password: mqtt accounts take no credentials (identity only)`,
				`people.alice.accounts.jabber.double_puppet: xmpp accounts take password only`,
				`people.alice.accounts.libera.token: irc accounts take password only`,
				`people.alice.accounts.matrix.password: matrix accounts take token, double_puppet only`,
				`people.alice.accounts.web.password: webrtc accounts take token only`,
			},
		},
		{
			Name: "ids and credentials each type refuses",
			YAML: peopleNets + `
people:
  alice:
    name: "Alice\nQUIT"
    avatar: ftp://example.org/a.png
    home: matrix
    accounts:
      jabber: alice@example.org/phone
      matrix: {id: "@alice:example.org", token: t, double_puppet: true}
      web: "alice!"
      libera: {id: alice, pass: x}
  bob:
    accounts:
      jabber: example.org
      matrix: {id: "@bob:elsewhere.org", double_puppet: true}
  carol: {accounts: {matrix: carol}}
`,
			Want: []string{
				`people.alice.accounts.jabber: want a bare JID user@domain, got "alice@example.org/phone"`,
				`people.alice.accounts.libera.pass: unknown key`,
				`people.alice.accounts.matrix.double_puppet: either a token or double_puppet, not both`,
				`people.alice.accounts.web: invalid web page id "alice!": letters, digits, . _ and - only`,
				`people.alice.avatar: "ftp://example.org/a.png" is not an http:// or https:// URL with a host`,
				`people.alice.name: contains a line break or control character`,
				`people.bob.accounts.jabber: want a bare JID user@domain, got "example.org"`,
				`people.bob.accounts.matrix.double_puppet: only users of example.org can be double-puppeted through the appservice; give a token for @bob:elsewhere.org`,
				`people.carol.accounts.matrix: want a Matrix user id @name:server, got "carol"`,
			},
		},
	})
}

// The worked example: alice with IRC, XMPP and Matrix accounts,
// her secrets from the environment and never shown.
func TestPeople(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	c, err := config.ParseEnv([]byte(peopleNets+`
people:
  alice:
    name: Alice Liddell
    avatar: https://example.org/alice.png
    home: matrix
    accounts:
      libera: {id: alice, password: "${ALICE_PW}"}
      jabber: {id: Alice@Example.org, password: "${ALICE_PW}"}
      matrix: {id: "@alice:example.org", double_puppet: true}
      web: {id: alice, token: "${ALICE_PW}"}
  bob:
    accounts: {devices: bobs-phone}
`), map[string]string{"ALICE_PW": secret})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := c.People["alice"], c.People["bob"]
	if a := alice.Accounts["libera"]; a.ID != "alice" || a.Password != secret {
		t.Errorf("alice's IRC account %+v", a)
	}
	if bob.Name != "bob" || bob.Home != "devices" || bob.Accounts["devices"].ID != "bobs-phone" {
		t.Errorf("bob's defaults: %+v", bob)
	}
	var logText bytes.Buffer
	slog.New(slog.NewTextHandler(&logText, nil)).Info("cfg", "config", c, "alice", alice, "account", alice.Accounts["libera"])
	for name, out := range map[string]string{"String": c.String(), "%+v": fmt.Sprintf("%+v %v", *alice, alice), "log": logText.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows alice's password:\n%s", name, out)
		}
	}
	if s := c.String(); !strings.Contains(s, "bob:\n    name: bob\n    home: devices\n    accounts:\n      devices: bobs-phone\n") ||
		!strings.Contains(s, "libera:\n        id: alice\n        password: xxxxx\n") {
		t.Errorf("String shows the people as:\n%s", s)
	}

	people, keys := c.PeopleMapping()
	p, err := mapping.NewPeople(people, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ network, id, want string }{
		{"libera", "ALICE", "alice"},             // IRC: without case
		{"jabber", "alice@example.org", "alice"}, // as the adapter gives a real JID
		{"matrix", "@alice:example.org", "alice"},
		{"matrix", "@Alice:example.org", ""},
		{"devices", "bobs-phone", "bob"},
		{"web", "alice", "alice"},
		{"libera", "bob", ""},
	} {
		if got, _ := p.Lookup(tt.network, tt.id); got.ID != tt.want {
			t.Errorf("Lookup(%s, %s) = %q, want %q", tt.network, tt.id, got.ID, tt.want)
		}
	}
	if got, _ := p.Person("alice"); got.Name != "Alice Liddell" || got.Home != "matrix" || got.Avatar != "https://example.org/alice.png" {
		t.Errorf("alice = %+v", got)
	}
}

// Each network's adapter is handed the accounts there that carry
// credentials, and never shows their secrets.
func TestPersonalAccounts(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	c, err := config.ParseEnv([]byte(peopleNets+`
people:
  bob: {home: jabber, accounts: {libera: {id: bob, password: "${PW}"}, jabber: bob@example.org}}
  alice:
    name: Alice
    home: matrix
    accounts:
      libera: {id: alice, password: "${PW}"}
      matrix: {id: "@alice:example.org", double_puppet: true}
      web: {id: alice, token: "${PW}"}
      devices: alices-phone
  carol: {accounts: {libera: carol}}
`), map[string]string{"PW": secret})
	if err != nil {
		t.Fatal(err)
	}
	got := adapters.PersonalAccounts(c)
	want := map[string][]adapters.PersonalAccount{
		"libera": {
			{Person: "alice", Name: "Alice", Home: "matrix", ID: "alice", Password: secret},
			{Person: "bob", Name: "bob", Home: "jabber", ID: "bob", Password: secret},
		},
		"matrix": {{Person: "alice", Name: "Alice", Home: "matrix", ID: "@alice:example.org", DoublePuppet: true}},
		"web":    {{Person: "alice", Name: "Alice", Home: "matrix", ID: "alice", Token: secret}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PersonalAccounts =\n%v\nwant\n%v", got, want)
	}
	var logText bytes.Buffer
	slog.New(slog.NewTextHandler(&logText, nil)).Info("people", "libera", got["libera"], "one", got["web"][0])
	for name, out := range map[string]string{"%v": fmt.Sprintf("%v %+v", got, got["libera"][0]), "log": logText.String()} {
		if strings.Contains(out, secret) || !strings.Contains(out, "alice (Alice) as alice with") {
			t.Errorf("%s shows:\n%s", name, out)
		}
	}
}

// The worked example of docs/people.md is a valid configuration, and
// gives alice the accounts it says.
func TestPeopleGuideExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/people.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "## The worked example")
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no yaml block under the worked example")
	}
	env := map[string]string{"XMPP_PASSWORD": "x", "MATRIX_AS_TOKEN": "a", "MATRIX_HS_TOKEN": "h", "ALICE_IRC_PASSWORD": "p1", "ALICE_XMPP_PASSWORD": "p2"}
	c, err := config.ParseEnv([]byte(block), env)
	if err != nil {
		t.Fatalf("%v\n%s", err, block)
	}
	got := adapters.PersonalAccounts(c)
	if len(got["libera"]) != 1 || got["libera"][0].Password != "p1" || len(got["jabber-relay"]) != 1 || !got["matrix"][0].DoublePuppet || len(got["devices"]) != 0 {
		t.Errorf("personal accounts of the guide's alice: %v", got)
	}
}
