package webrtc

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/switchboard-chat/switchboard/adapters"
)

var _ adapters.PeopleUser = (*Adapter)(nil)

// PersonHeader carries a person's personal token on the offer: a peer
// that presents one speaks as that person, verified. It is not
// Authorization, which carries the room's token.
const PersonHeader = "X-Switchboard-Person"

// UsePeople sets the people who may join as themselves: the web accounts
// with a token. A token two people share identifies neither of them (the
// config should not allow it; this makes sure a mistake never shows one
// person as the other). Peers already joined keep who they are.
func (a *Adapter) UsePeople(accts []adapters.PersonalAccount) {
	var people []adapters.PersonalAccount
	seen := map[[32]byte]string{}
	shared := map[[32]byte]bool{}
	for _, acc := range accts {
		if acc.Token == "" || acc.ID == "" {
			continue
		}
		h := sha256.Sum256([]byte(acc.Token))
		if other, ok := seen[h]; ok {
			a.log.Error("two people have the same web token; neither can use it", "person", acc.Person, "other", other)
			shared[h] = true
			continue
		}
		seen[h] = acc.Person
		people = append(people, acc)
	}
	people = slices.DeleteFunc(people, func(acc adapters.PersonalAccount) bool { return shared[sha256.Sum256([]byte(acc.Token))] })
	a.mu.Lock()
	a.people = people
	a.mu.Unlock()
}

// tokenEqual compares a presented token with a configured one in
// constant time; hashing first hides the lengths too.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// personOf finds whose personal token the request presents: nil and ok
// without the header, nil and not ok (the request is answered 403) for a
// token that is no one's. Every person's token is compared, whichever
// matches, so the time taken tells nothing of which or how many.
func (a *Adapter) personOf(w http.ResponseWriter, r *http.Request) (*adapters.PersonalAccount, bool) {
	vals := r.Header.Values(PersonHeader)
	if len(vals) == 0 {
		return nil, true
	}
	got := strings.TrimSpace(vals[0])
	a.mu.Lock()
	people := a.people
	a.mu.Unlock()
	var found *adapters.PersonalAccount
	for i := range people {
		if tokenEqual(got, people[i].Token) && found == nil {
			found = &people[i]
		}
	}
	if found == nil || got == "" || len(vals) > 1 {
		a.log.Warn("personal token refused", "room", r.PathValue("room"), "remote", r.RemoteAddr)
		httpError(w, http.StatusForbidden, "personal token not recognised (%s): join without it, or ask for yours", PersonHeader)
		return nil, false
	}
	acc := *found
	return &acc, true
}

// personalID reports whether id is a person's web account, which only
// their token may speak as.
func (a *Adapter) personalID(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, acc := range a.people {
		if strings.EqualFold(acc.ID, id) {
			return true
		}
	}
	return false
}
