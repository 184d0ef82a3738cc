package matrix

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// personalAdapter starts an adapter for a public room of carol's, with
// the given personal accounts.
func personalAdapter(t *testing.T, s *server, carol *testenv.MatrixClient, accts ...adapters.PersonalAccount) (id.RoomID, *Adapter, func() []bridge.Event) {
	t.Helper()
	rid := carol.NewRoom(true, "")
	a := newAdapter(t, s)
	a.UsePeople(accts)
	rec := startRecorded(t, a, string(rid))
	return rid, a, rec.Events
}

// personSays delivers a message of person (writing from XMPP, home
// Matrix) to rid, as the router would.
func personSays(t *testing.T, a *Adapter, rid id.RoomID, person, text string) string {
	t.Helper()
	sd := bridge.Sender{Network: "jabber", ID: person + "@example.org", Name: strings.ToUpper(person[:1]) + person[1:] + " L", Person: person, Home: "elsewhere", Authenticated: true}
	return deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(sd), Text: text}})
	})
}

// TestPersonalDoublePuppet: a message whose sender is the person alice,
// whose Matrix account is double-puppeted through the appservice,
// appears from @alice:localhost, not a ghost, and no ghost of hers
// joins; its echo is not bridged back, and what she writes from her own
// client is, once. erin, double_puppet but not in the registration, is
// refused by the homeserver: failed, and her ghost speaks.
func TestPersonalDoublePuppet(t *testing.T) {
	s := newServerWith(t, "@alice:localhost")
	carol := s.Client(t, "carol")
	alice := s.Client(t, "alice")
	s.Register(t, "erin", "password-erin")
	rid, a, events := personalAdapter(t, s, carol,
		adapters.PersonalAccount{Person: "alice", Name: "Alice L", ID: "@alice:localhost", DoublePuppet: true},
		adapters.PersonalAccount{Person: "erin", Name: "Erin L", ID: "@erin:localhost", DoublePuppet: true},
	)
	// Checked once the homeserver answers, before anyone speaks.
	waitStatus(t, a, "erin", "failed: ")
	evid := personSays(t, a, rid, "alice", "hello from xmpp")
	got := waitEvent(t, carol, "alice's message", bodyIs(rid, "hello from xmpp"))
	if got.Sender != "@alice:localhost" || string(got.ID) != evid {
		t.Errorf("message from %s (%s), want @alice:localhost (%s)", got.Sender, got.ID, evid)
	}
	if st := a.PersonalStatus()["alice"]; st != "connected" {
		t.Errorf("alice's status %q", st)
	}
	if name := carol.DisplayName("@alice:localhost"); name != "alice" {
		t.Errorf("alice's own display name became %q", name)
	}

	personSays(t, a, rid, "erin", "erin here")
	got = waitEvent(t, carol, "erin's message", bodyIs(rid, "erin here"))
	if !a.ghosts.isGhost(string(got.Sender)) {
		t.Errorf("erin's message from %s, want her ghost", got.Sender)
	}
	if st := a.PersonalStatus()["erin"]; !strings.HasPrefix(st, "failed: ") || !strings.Contains(st, "does not let the appservice speak as @erin:localhost") {
		t.Errorf("erin's status %q", st)
	}

	// Her own client: bridged once, as her; our send as her: never.
	alice.Text(rid, "from element")
	deadline := time.Now().Add(waitFor)
	for countText(events(), "from element") == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a second copy would be here by now
	if n := countText(events(), "from element"); n != 1 {
		t.Errorf("her own message reached the bridge %d times", n)
	}
	if n := countText(events(), "hello from xmpp"); n != 0 {
		t.Errorf("what we sent as her came back %d times", n)
	}
	for _, ev := range events() {
		h := ev.Head()
		if _, join := ev.(*bridge.Join); join && h.Sender.ID == "@alice:localhost" {
			t.Errorf("the join we made for her was bridged: %+v", ev)
		}
		if m, ok := ev.(*bridge.Message); ok && m.Text == "from element" && (h.Sender.ID != "@alice:localhost" || !h.Sender.Authenticated) {
			t.Errorf("her message came from %+v", h.Sender)
		}
	}

	// Banned as herself, she is refused there; her ghost never speaks
	// for her instead.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := carol.BanUser(ctx, rid, &mautrix.ReqBanUser{UserID: "@alice:localhost", Reason: "enough"}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, carol, "the ban", func(e *event.Event) bool {
		return e.RoomID == rid && e.Type == event.StateMember && e.StateKey != nil && *e.StateKey == "@alice:localhost" && e.Content.AsMember().Membership == event.MembershipBan
	})
	var err error
	for time.Now().Before(deadline) {
		sd := bridge.Sender{Network: "jabber", ID: "alice@example.org", Name: "Alice L", Person: "alice", Home: "elsewhere"}
		if _, err = a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(sd), Text: "after the ban"}}); errors.Is(err, bridge.ErrPermanent) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the ban has not been pushed to the appservice yet
	}
	if !errors.Is(err, bridge.ErrBlocked) {
		t.Errorf("a send as her after her ban: %v, want a refusal", err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, e := range carol.Events() {
		if bodyIs(rid, "after the ban")(e) {
			t.Errorf("sent after her ban by %s", e.Sender)
		}
	}

	for _, e := range carol.Events() {
		if e.RoomID == rid && e.Type == event.StateMember && e.StateKey != nil && *e.StateKey != string(got.Sender) && a.ghosts.isGhost(*e.StateKey) {
			t.Errorf("a ghost joined: %s", *e.StateKey)
		}
	}
}

// TestPersonalToken: with a (local) user's own access token the message
// goes out as them; a bad token marks the account failed and the ghost
// speaks.
func TestPersonalToken(t *testing.T) {
	s := newServerWith(t)
	carol := s.Client(t, "carol")
	bob := s.Client(t, "bob")
	rid, a, events := personalAdapter(t, s, carol,
		adapters.PersonalAccount{Person: "bob", Name: "Bob L", ID: "@bob:localhost", Token: bob.AccessToken},
		adapters.PersonalAccount{Person: "dora", Name: "Dora L", ID: "@dora:localhost", Token: "not-a-token-of-anyone"},
	)
	personSays(t, a, rid, "bob", "bob with his token")
	if got := waitEvent(t, carol, "bob's message", bodyIs(rid, "bob with his token")); got.Sender != "@bob:localhost" {
		t.Errorf("bob's message from %s", got.Sender)
	}
	personSays(t, a, rid, "dora", "dora with a bad token")
	if got := waitEvent(t, carol, "dora's message", bodyIs(rid, "dora with a bad token")); !strings.HasPrefix(string(got.Sender), "@sb_elsewhere_person=2fdora:") {
		t.Errorf("dora's message from %s, want her ghost", got.Sender)
	}
	// Transactions come in order: once carol's next message is in, the
	// echo of bob's would have been.
	carol.Text(rid, "carol after them")
	deadline := time.Now().Add(waitFor)
	for countText(events(), "carol after them") == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := countText(events(), "bob with his token"); n != 0 {
		t.Errorf("what we sent with his token came back %d times", n)
	}
	st := a.PersonalStatus()
	if st["bob"] != "connected" || !strings.HasPrefix(st["dora"], "failed: the homeserver refuses the access token of @dora:localhost") || strings.Contains(st["dora"], "not-a-token") {
		t.Errorf("status %q", st)
	}
}

// TestPersonalRegistration: matrix-registration adds one non-exclusive
// exact namespace per double-puppeted person, and none for a token.
func TestPersonalRegistration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	cfg := `
networks:
  mx: {type: matrix, homeserver: http://127.0.0.1:8008, domain: example.org, as_token: the-as-token, hs_token: the-hs-token}
people:
  alice: {name: Alice, home: mx, accounts: {mx: {id: "@alice:example.org", double_puppet: true}}}
  bob: {name: Bob, home: mx, accounts: {mx: {id: "@bob:elsewhere.org", token: secret}}}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := RegistrationYAML(c, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "regex: ^@alice:example\\.org$\n          exclusive: false") || strings.Contains(string(out), "bob") || strings.Contains(string(out), "secret") {
		t.Errorf("registration:\n%s", out)
	}
}

// TestRegistrationNamespace: with double_puppet_namespace the
// registration has that pattern, anchored, as one non-exclusive
// namespace, and an exact one for each double-puppeted person it does
// not match; nobody's own account becomes exclusive.
func TestRegistrationNamespace(t *testing.T) {
	c, err := config.Parse([]byte(`
networks:
  mx: {type: matrix, homeserver: http://127.0.0.1:8008, domain: example.org, as_token: the-as-token, hs_token: the-hs-token,
       double_puppet_namespace: '@p-[^:]+:example\.org'}
people:
  alice: {accounts: {mx: {id: "@alice:example.org", double_puppet: true}}}
  pat: {accounts: {mx: {id: "@p-pat:example.org", double_puppet: true}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := RegistrationYAML(c, "")
	if err != nil {
		t.Fatal(err)
	}
	var reg appservice.Registration
	if err := yaml.Unmarshal(out, &reg); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ns := range reg.Namespaces.UserIDs {
		if !ns.Exclusive {
			got = append(got, ns.Regex)
		}
	}
	want := []string{`^(?:@p-[^:]+:example\.org)$`, `^@alice:example\.org$`}
	if !slices.Equal(got, want) {
		t.Errorf("non-exclusive namespaces %q, want %q\n%s", got, want, out)
	}
	ns := regexp.MustCompile(got[0])
	for u, match := range map[string]bool{"@p-bob:example.org": true, "@p-bob:example.org.evil.com": false, "@x@p-bob:example.org": false, "@alice:example.org": false} {
		if ns.MatchString(u) != match {
			t.Errorf("%s matched: %v, want %v", u, !match, match)
		}
	}
}

// TestRegistrationNotes: a double_puppet account the registration does
// not name (a person added through the API, outside the namespace or
// with none) gets a note on double_puppet saying what to do; one the
// namespace matches gets none, nor does a file person with exact
// namespaces, the default.
func TestRegistrationNotes(t *testing.T) {
	file := func(ns string) *config.Config {
		c, err := config.Parse([]byte(`
networks:
  mx: {type: matrix, homeserver: http://127.0.0.1:8008, domain: example.org, as_token: the-as-token, hs_token: the-hs-token,
       double_puppet_namespace: '` + ns + `'}
people:
  alice: {accounts: {mx: {id: "@alice:example.org", double_puppet: true}}}
`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	api := func(mxid string) *config.Person {
		return &config.Person{Accounts: map[string]config.Account{"mx": {ID: mxid, DoublePuppet: true}}}
	}
	for _, c := range []struct {
		name, ns string
		people   map[string]*config.Person
		want     []string // path: text in the message
	}{
		{"the file's people, no namespace", "", nil, nil},
		{"the file's people, outside the namespace", `@p-[^:]+:example\.org`, nil,
			[]string{"people.alice.accounts.mx.double_puppet: @alice:example.org is outside networks.mx.double_puppet_namespace: the registration names them on their own"}},
		{"added through the API, no namespace", "", map[string]*config.Person{"bob": api("@bob:example.org")},
			[]string{"people.bob.accounts.mx.double_puppet: @bob:example.org is not in the registration"}},
		{"added through the API, outside the namespace", `@p-[^:]+:example\.org`, map[string]*config.Person{"bob": api("@bob:example.org")},
			[]string{"people.bob.accounts.mx.double_puppet: @bob:example.org is outside networks.mx.double_puppet_namespace and not in the config file"}},
		{"added through the API, in the namespace", `@p-[^:]+:example\.org`, map[string]*config.Person{"pat": api("@p-pat:example.org")}, nil},
		{"token, not double_puppet", "", map[string]*config.Person{"tom": {Accounts: map[string]config.Account{"mx": {ID: "@tom:example.org", Token: "t"}}}}, nil},
	} {
		cfg := file(c.ns)
		people := c.people
		if people == nil {
			people = cfg.People
		}
		var got []string
		for _, n := range cfg.PeopleNotes(people) {
			got = append(got, n.Error())
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: notes %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], c.want[i]) || !strings.Contains(got[i], "switchboard matrix-registration") {
				t.Errorf("%s: note %q, want %q… and how to write the registration", c.name, got[i], c.want[i])
			}
		}
	}
}

func waitStatus(t *testing.T, a *Adapter, person, prefix string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !strings.HasPrefix(a.PersonalStatus()[person], prefix) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's status %q, want %s...", person, a.PersonalStatus()[person], prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countText(evs []bridge.Event, text string) int {
	n := 0
	for _, ev := range evs {
		if m, ok := ev.(*bridge.Message); ok && m.Text == text {
			n++
		}
	}
	return n
}
