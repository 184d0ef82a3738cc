package matrix

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// A person's own Matrix user (adapters.PersonalAccount, ID their MXID)
// speaks for them in linked rooms instead of a ghost, either through the
// appservice (DoublePuppet: the appservice's token with ?user_id=, which
// the homeserver allows for users in the registration's namespaces, see
// withPeople) or with their own access token (Token: a user of any
// homeserver). Their profile is theirs: it is never renamed. Direct
// messages go through their ghost (the DM rooms are the ghost's), but
// in a direct chat their inbox joined (inbox.go).

var _ adapters.PeopleUser = (*Adapter)(nil)

// personalRecheck is how long a refused account is left failed before
// it is tried again (the registration may have been reloaded, the token
// replaced): until then their ghost speaks at once.
var personalRecheck = 10 * time.Minute

// personal is one person's Matrix user. state and checked are guarded by
// Adapter.peopleMu; check serializes the checks of the account.
type personal struct {
	acct    adapters.PersonalAccount
	user    id.UserID
	intent  *appservice.IntentAPI // set once connected
	state   string                // adapters.PersonalConnecting, adapters.PersonalConnected or "failed: why"
	checked time.Time             // when it was last refused
	check   sync.Mutex
}

// people is what the adapter knows of personal accounts (guarded by
// Adapter.peopleMu).
type people struct {
	byPerson map[string]*personal
	byUser   map[id.UserID]*personal
	// sent: event ids posted as a person, newest last (bounded): their
	// echoes are not bridged back.
	sent     map[id.EventID]bool
	sentList []id.EventID
	// joining: "room|user" of a person's join under way: the join event
	// pushed back is our own.
	joining map[string]time.Time
}

const maxSentRemembered = 4096

// UsePeople sets the people who speak through their own Matrix user. An
// account that changed is checked anew; an unusable one is marked failed
// (see PersonalStatus) and their ghost speaks for them.
func (a *Adapter) UsePeople(accts []adapters.PersonalAccount) {
	next := map[string]*personal{}
	for _, acct := range accts {
		if acct.Person == "" {
			continue
		}
		p := &personal{acct: acct, user: id.UserID(acct.ID), state: adapters.PersonalConnecting}
		if why := a.unusable(acct); why != "" {
			p.state = adapters.PersonalFailed(why)
			a.log.Error("personal Matrix account cannot be used; their ghost speaks for them", "person", acct.Person, "account", acct.ID, "why", why)
		}
		next[acct.Person] = p
	}
	a.peopleMu.Lock()
	for person, old := range a.people.byPerson {
		if p, ok := next[person]; ok && p.acct == old.acct {
			next[person] = old // unchanged: keep its state
		}
	}
	a.people.byPerson = next
	a.people.byUser = map[id.UserID]*personal{}
	for _, p := range next {
		a.people.byUser[p.user] = p
	}
	a.peopleMu.Unlock()
	// Running: the new accounts are checked now, so that the status
	// tells whether they work (a person added through the API: is their
	// user in the registration?) before they speak. Not yet running:
	// maintain checks them once the homeserver answers.
	a.mu.Lock()
	ctx := a.ctx
	a.mu.Unlock()
	if ctx != nil && a.connected.Load() {
		go a.checkPeople(ctx)
	}
}

// unusable says why an account cannot speak for its person ("" if it can).
func (a *Adapter) unusable(acct adapters.PersonalAccount) string {
	_, server, err := id.UserID(acct.ID).ParseAndValidateRelaxed()
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a Matrix user id", acct.ID)
	case acct.DoublePuppet && server != a.cfg.Domain:
		return fmt.Sprintf("only users of %s can be double-puppeted, not %s", a.cfg.Domain, acct.ID)
	case !acct.DoublePuppet && acct.Token == "":
		return "neither double_puppet nor a token"
	}
	return ""
}

// PersonalStatus is the state of each person's Matrix user, by person:
// "connecting" (not checked yet), "connected", or "failed: " and the
// reason. No secret is part of it.
func (a *Adapter) PersonalStatus() map[string]string {
	a.peopleMu.Lock()
	defer a.peopleMu.Unlock()
	out := make(map[string]string, len(a.people.byPerson))
	for person, p := range a.people.byPerson {
		out[person] = p.state
	}
	return out
}

// personalIntent is the person's own user for a delivery to a linked
// room, checked with the homeserver on first use; nil means their ghost
// speaks (no usable account, or the homeserver refused it).
func (a *Adapter) personalIntent(ctx context.Context, person string) *appservice.IntentAPI {
	if person == "" {
		return nil
	}
	a.peopleMu.Lock()
	p := a.people.byPerson[person]
	a.peopleMu.Unlock()
	if p == nil {
		return nil
	}
	p.check.Lock()
	defer p.check.Unlock()
	a.peopleMu.Lock()
	state, intent, checked := p.state, p.intent, p.checked
	a.peopleMu.Unlock()
	switch {
	case state == adapters.PersonalConnected:
		return intent
	case adapters.IsPersonalFailed(state) && (checked.IsZero() || time.Since(checked) < personalRecheck):
		return nil // unusable, or refused a short while ago
	}
	intent, err := a.makePersonalIntent(ctx, p.acct)
	if err == nil {
		var who *mautrix.RespWhoami
		if who, err = intent.Whoami(ctx); err == nil && who.UserID != p.user {
			err = fmt.Errorf("%w: it is %s's, not %s's", errOtherUser, who.UserID, p.user)
		}
	}
	if err != nil && !refused(err) && !errors.Is(err, errOtherUser) {
		// The homeserver is away: the ghost will not do better; the
		// outbox retries.
		a.log.Warn("matrix: cannot check a person's own user; their ghost speaks meanwhile", "person", person, "user", p.user, "err", err)
		return nil
	}
	if err != nil {
		a.personalFailed(p, err)
		return nil
	}
	a.peopleMu.Lock()
	p.intent, p.state = intent, adapters.PersonalConnected
	a.peopleMu.Unlock()
	a.log.Info("matrix: a person speaks as their own user", "person", person, "user", p.user)
	return intent
}

// checkPeople checks the accounts not checked yet (or refused a while
// ago) with the homeserver, so that PersonalStatus tells before anyone
// speaks.
func (a *Adapter) checkPeople(ctx context.Context) {
	a.peopleMu.Lock()
	var persons []string
	for person := range a.people.byPerson {
		persons = append(persons, person)
	}
	a.peopleMu.Unlock()
	for _, person := range persons {
		a.personalIntent(ctx, person)
	}
}

// makePersonalIntent builds the intent of a person's own user: the
// appservice masquerading as them (user_id), or a client with their
// token. IsCustomPuppet: never registered, and invited by the bot with
// the mark of a puppet that accepts by itself.
func (a *Adapter) makePersonalIntent(ctx context.Context, acct adapters.PersonalAccount) (*appservice.IntentAPI, error) {
	user := id.UserID(acct.ID)
	local, server, _ := user.ParseAndValidateRelaxed()
	// NewIntentAPI, not Intent: the appservice caches its intents, and
	// this one must not be handed to anyone else.
	intent := a.as.NewIntentAPI(local)
	intent.IsCustomPuppet = true
	if acct.DoublePuppet {
		return intent, nil
	}
	hs := a.hsURL
	if server != a.cfg.Domain {
		hs = "https://" + server
		if wk, err := mautrix.DiscoverClientAPI(ctx, server); err == nil && wk != nil && wk.Homeserver.BaseURL != "" {
			hs = wk.Homeserver.BaseURL
		}
	}
	c, err := a.as.NewExternalMautrixClient(user, acct.Token, hs)
	if err != nil {
		return nil, err
	}
	if server == a.cfg.Domain {
		c.Client = a.as.HTTPClient // the appservice's limits and timeout
	}
	intent.Client, intent.UserID = c, user
	return intent, nil
}

var errOtherUser = errors.New("the token is another user's")

// refused reports an answer that says the homeserver will not let us
// speak as the user: masquerading refused (M_FORBIDDEN), a bad or
// revoked token.
func refused(err error) bool {
	return errors.Is(err, mautrix.MForbidden) || errors.Is(err, mautrix.MUnknownToken) || errors.Is(err, mautrix.MMissingToken)
}

// personalFailed marks p failed (logged once until the reason changes):
// their ghost speaks for them meanwhile.
func (a *Adapter) personalFailed(p *personal, err error) {
	why := err.Error()
	if p.acct.DoublePuppet && errors.Is(err, mautrix.MForbidden) {
		why = "the homeserver does not let the appservice speak as " + string(p.user) + " (" + a.whyNotPuppeted(p.user) + "): " + why
	} else if !p.acct.DoublePuppet && refused(err) {
		why = "the homeserver refuses the access token of " + string(p.user) + ": " + why
	}
	a.peopleMu.Lock()
	changed := p.state != adapters.PersonalFailed(why)
	p.state, p.intent, p.checked = adapters.PersonalFailed(why), nil, time.Now()
	a.peopleMu.Unlock()
	if changed {
		a.log.Error("matrix: a person's own user cannot be used; their ghost speaks for them", "person", p.acct.Person, "user", p.user, "why", why)
	}
}

// whyNotPuppeted is what to do when the homeserver refuses to let the
// appservice speak as user.
func (a *Adapter) whyNotPuppeted(user id.UserID) string {
	if ns := peopleNamespace(&a.cfg); ns != nil && ns.MatchString(string(user)) {
		return "the user must exist, and the homeserver must have read the registration written with double_puppet_namespace: write it again with switchboard matrix-registration and restart the homeserver once"
	}
	return "the user must exist and be in the registration, which names double_puppet people of the config file and those matching double_puppet_namespace: write it again with switchboard matrix-registration and restart the homeserver"
}

// personOf returns the personal account whose user u is, if any.
func (a *Adapter) personOf(u id.UserID) *personal {
	a.peopleMu.Lock()
	defer a.peopleMu.Unlock()
	return a.people.byUser[u]
}

// personalRefusedSend handles a send as a person that failed: a token
// revoked meanwhile marks the account failed, so that the retry goes
// through the ghost.
func (a *Adapter) personalRefusedSend(intent *appservice.IntentAPI, err error) {
	if !intent.IsCustomPuppet || !(errors.Is(err, mautrix.MUnknownToken) || errors.Is(err, mautrix.MMissingToken)) {
		return
	}
	if p := a.personOf(intent.UserID); p != nil {
		a.personalFailed(p, err)
	}
}

// sentAsPerson remembers an event posted as a person: its echo is ours.
func (a *Adapter) sentAsPerson(intent *appservice.IntentAPI, evid id.EventID) {
	if !intent.IsCustomPuppet || evid == "" {
		return
	}
	a.peopleMu.Lock()
	defer a.peopleMu.Unlock()
	if a.people.sent == nil {
		a.people.sent = map[id.EventID]bool{}
	}
	a.people.sent[evid] = true
	a.people.sentList = append(a.people.sentList, evid)
	if len(a.people.sentList) > maxSentRemembered {
		delete(a.people.sent, a.people.sentList[0])
		a.people.sentList = a.people.sentList[1:]
	}
}

// joiningAsPerson notes that a person's user is about to join rid, when
// it is not in it: the join event pushed back is ours.
func (a *Adapter) joiningAsPerson(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID) {
	if !intent.IsCustomPuppet || a.as.StateStore.IsInRoom(ctx, rid, intent.UserID) {
		return
	}
	a.peopleMu.Lock()
	defer a.peopleMu.Unlock()
	if a.people.joining == nil {
		a.people.joining = map[string]time.Time{}
	}
	now := time.Now()
	for k, t := range a.people.joining {
		if now.Sub(t) > time.Minute {
			delete(a.people.joining, k)
		}
	}
	a.people.joining[string(rid)+"|"+string(intent.UserID)] = now
}

// personalEcho reports a pushed event that Switchboard itself sent as a
// person: one whose event id it recorded, or that carries its
// transaction mark (the push may come before the send's answer), or
// their join that a send made. What the person sends from their own
// clients has neither, and is bridged.
func (a *Adapter) personalEcho(evt *event.Event) bool {
	if a.personOf(evt.Sender) == nil {
		return false
	}
	if _, marked := evt.Content.Raw[txnMarker]; marked {
		return true
	}
	a.peopleMu.Lock()
	defer a.peopleMu.Unlock()
	if a.people.sent[evt.ID] {
		return true
	}
	if evt.Type == event.StateMember && evt.StateKey != nil && id.UserID(*evt.StateKey) == evt.Sender && evt.Content.AsMember().Membership == event.MembershipJoin {
		key := string(evt.RoomID) + "|" + string(evt.Sender)
		if _, ok := a.people.joining[key]; ok {
			delete(a.people.joining, key)
			return true
		}
	}
	return false
}

// speaker is who speaks for sender s in delivery d: in a linked room a
// person's own user when they have one that works, and in a direct
// chat of their inbox (see personalDMIntent); else their ghost (or the
// bot when relaying).
func (a *Adapter) speaker(ctx context.Context, d *bridge.Delivery, s bridge.Sender) (*appservice.IntentAPI, error) {
	if d.Room != "" && !a.relay && !d.Relay {
		if intent := a.personalIntent(ctx, s.Person); intent != nil {
			return intent, nil
		}
	}
	if d.Room == "" && !a.relay && !d.Relay {
		if intent := a.personalDMIntent(ctx, d, s); intent != nil {
			return intent, nil
		}
	}
	return a.intentFor(ctx, s, d.Relay)
}
