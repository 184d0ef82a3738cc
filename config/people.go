package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-chat/switchboard/mapping"
)

// Person is one human with accounts on several networks (the people
// section): they appear as one sender, with this name, whichever account
// they write from.
type Person struct {
	// Name is their display name on every network; default the id.
	Name string `yaml:"name"`
	// Avatar is the http(s) URL of their picture.
	Avatar string `yaml:"avatar,omitempty"`
	// Home is the network they are told of failures on, and the one
	// their puppet elsewhere says they are from: the network of one of
	// their accounts; default that of their only account.
	Home string `yaml:"home"`
	// Accounts maps a network name to their account there.
	Accounts map[string]Account `yaml:"accounts"`
	// AwayAfter is how long they may do nothing Switchboard sees on
	// their home network before their own connections elsewhere (IRC,
	// XMPP) are marked away; default DefaultAwayAfter.
	AwayAfter time.Duration `yaml:"away_after"`
	// AwayMessage is what those connections say while away; default
	// DefaultAwayMessage.
	AwayMessage string `yaml:"away_message"`
}

// Defaults of a person's away_after and away_message.
const (
	DefaultAwayAfter   = 30 * time.Minute
	DefaultAwayMessage = "Away"
)

// Account is a person's account on one network: written as a plain
// string (the id alone, identity only) or as a mapping with the id and
// credentials with which Switchboard can speak as them. Which
// credentials a network's accounts may carry is the network type's word
// (NetworkType.Accounts).
type Account struct {
	// ID is who they are on the network, as it authenticates them: an
	// IRC account, a bare JID, a Matrix user id, an MQTT device id, a
	// web page id.
	ID string `yaml:"id"`
	// Password: IRC SASL PLAIN, XMPP.
	Password string `yaml:"password,omitempty" secret:"true"`
	// Token: the web page's personal token, or a Matrix personal access
	// token.
	Token string `yaml:"token,omitempty" secret:"true"`
	// DoublePuppet: Matrix, speak as them through the appservice.
	DoublePuppet bool `yaml:"double_puppet,omitempty"`
}

// Credentials lists the credential keys the account has set, in the
// order of its fields.
func (a Account) Credentials() []string {
	var keys []string
	v := reflect.ValueOf(a)
	byIndex := make([]string, v.NumField())
	for key, i := range fieldsOf(v.Type()) {
		byIndex[i] = key
	}
	for i, key := range byIndex {
		if key != "" && key != "id" && !v.Field(i).IsZero() {
			keys = append(keys, key)
		}
	}
	return keys
}

// decodeYAML takes a plain string as the id alone, a mapping as the
// account's keys.
func (a *Account) decodeYAML(d *decoder, n *yaml.Node, path string) {
	*a = Account{}
	n = resolveAlias(n)
	switch {
	case isNull(n):
	case n.Kind == yaml.ScalarNode:
		d.scalar(n, reflect.ValueOf(&a.ID).Elem(), path)
	default:
		d.decodeStruct(n, reflect.ValueOf(a).Elem(), path, nil)
	}
}

// accountKeys is Account without its methods, for MarshalYAML.
type accountKeys Account

// MarshalYAML writes an account without credentials as its id alone, as
// it is usually written.
func (a Account) MarshalYAML() (any, error) {
	if len(a.Credentials()) == 0 {
		return a.ID, nil
	}
	return accountKeys(a), nil
}

// AccountRules is what a network type says about people's accounts on
// its networks (NetworkType.Accounts).
type AccountRules struct {
	// Credentials lists the keys besides id that an account may carry
	// ("password", "token", "double_puppet"); none: identity only.
	Credentials []string
	// Key, when set, maps an id to the form in which two ids of the same
	// account are equal (IRC accounts ignore case); nil compares ids
	// exactly. Two people may not claim one account.
	Key func(id string) string
	// Check, when set, reports what else is wrong with an account on
	// network n; keys are relative to the account ("" for the account
	// itself or its id, "token").
	Check func(p *Problems, a Account, n *Network)
	// Note, when set, reports what an operator needs to know of a valid
	// account on the network named network, keys as for Check: a step
	// outside Switchboard before it works, say. file is the config file
	// as loaded (its people are the file's, not the API's).
	Note func(p *Problems, a Account, network string, file *Config)
	// NotHome, when set, says why a person whose account on the network
	// is a cannot have the network as their home ("" when they can):
	// home is where they read what Switchboard tells them and, with
	// personal accounts, the direct messages to those, so it must be a
	// network where they keep a client Switchboard does not hold.
	NotHome func(a Account) string
	// HomeNote, when set, is what to know of a home on the network of a
	// person Switchboard speaks as elsewhere (a network without direct
	// messages, say): a note at people.<id>.home, not an error.
	HomeNote string
	// HomeNoteOf, when set, is HomeNote for a person whose account on
	// the network is a ("" for none): what to know depends on it (a web
	// account without a token, say).
	HomeNoteOf func(a Account) string
}

// maxAwayMessage keeps an away message within what servers take (IRC
// servers' AWAYLEN is commonly 200).
const maxAwayMessage = 200

// personIDRE: a person's id is in puppet names, paths and the API's
// URLs; dots or slashes would make them ambiguous.
var personIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) applyPeopleDefaults() {
	for id, p := range c.People {
		if p == nil {
			continue
		}
		SetDefault(&p.Name, id)
		SetDefault(&p.AwayAfter, DefaultAwayAfter)
		SetDefault(&p.AwayMessage, DefaultAwayMessage)
		if p.Home == "" && len(p.Accounts) == 1 {
			for network := range p.Accounts {
				p.Home = network
			}
		}
	}
}

// validatePeople checks the people in order of their ids, except that
// last, if set, comes last: an account two people claim is blamed on
// the one checked later, which for an API change is the person changed.
func (c *Config) validatePeople(errs *errorList, last string) {
	type claim struct{ person, id string }
	claimed := map[[2]string]claim{} // network, key: the first person who claimed it
	ids := sortedKeys(c.People)
	if i := slices.Index(ids, last); i >= 0 {
		ids = append(slices.Delete(ids, i, i+1), last)
	}
	for _, id := range ids {
		path := join("people", id)
		if !personIDRE.MatchString(id) {
			errs.add(path, "invalid person id %q (want letters, digits, _ and -, at most 64)", id)
		}
		p := c.People[id]
		if p == nil || len(p.Accounts) == 0 {
			errs.add(join(path, "accounts"), "required: at least one network: account")
			continue
		}
		if err := checkLine(p.Name); err != nil {
			errs.add(join(path, "name"), "%v", err)
		}
		if p.Avatar != "" {
			if err := CheckHTTPURL(p.Avatar, "https://example.org/alice.png"); err != nil {
				errs.add(join(path, "avatar"), "%v", err)
			}
		}
		if p.AwayAfter < time.Second {
			errs.add(join(path, "away_after"), "want at least 1s, got %v", p.AwayAfter)
		}
		if err := checkLine(p.AwayMessage); err != nil {
			errs.add(join(path, "away_message"), "%v", err)
		} else if len(p.AwayMessage) > maxAwayMessage {
			errs.add(join(path, "away_message"), "at most %d bytes, got %d", maxAwayMessage, len(p.AwayMessage))
		}
		networks := sortedKeys(p.Accounts)
		switch _, ok := p.Accounts[p.Home]; {
		case p.Home == "":
			errs.add(join(path, "home"), "required: the network of one of their accounts (%s)", strings.Join(networks, ", "))
		case !ok:
			errs.add(join(path, "home"), "%s has no account on %q (want one of %s)", id, p.Home, strings.Join(networks, ", "))
		default:
			if why := c.notHome(p, p.Home); why != "" {
				var ok []string
				for _, network := range networks {
					if c.notHome(p, network) == "" {
						ok = append(ok, network)
					}
				}
				want := "they have no other: add an account of theirs Switchboard does not hold"
				if len(ok) > 0 {
					want = "want one of " + strings.Join(ok, ", ")
				}
				errs.add(join(path, "home"), "%q: %s; home must be a network where %s has a client of their own (%s)", p.Home, why, id, want)
			}
		}
		for _, network := range networks {
			apath := join(join(path, "accounts"), network)
			a := p.Accounts[network]
			n, ok := c.Networks[network]
			if !ok {
				errs.add(apath, "no network %q", network)
				continue
			}
			if err := checkAccountID(a.ID); err != nil {
				errs.add(apath, "%v", err)
				continue
			}
			var rules AccountRules
			if n != nil {
				if t, ok := lookupType(n.Type); ok && t.Accounts != nil {
					rules = *t.Accounts
				}
				for _, k := range a.Credentials() {
					if slices.Contains(rules.Credentials, k) {
						continue
					}
					if len(rules.Credentials) == 0 {
						errs.add(join(apath, k), "%s accounts take no credentials (identity only)", n.Type)
					} else {
						errs.add(join(apath, k), "%s accounts take %s only", n.Type, strings.Join(rules.Credentials, ", "))
					}
				}
				if rules.Check != nil {
					rules.Check(&Problems{errs: errs, path: apath}, a, n)
				}
			}
			key := a.ID
			if rules.Key != nil {
				key = rules.Key(key)
			}
			if first, dup := claimed[[2]string{network, key}]; dup {
				as := ""
				if first.id != a.ID {
					as = fmt.Sprintf(" (as %q)", first.id)
				}
				errs.add(apath, "%q is already an account of %s%s", a.ID, first.person, as)
				continue
			}
			claimed[[2]string{network, key}] = claim{id, a.ID}
		}
	}
}

// rulesOf is the account rules of network's type; nil: none.
func (c *Config) rulesOf(network string) *AccountRules {
	if n := c.Networks[network]; n != nil {
		if t, ok := lookupType(n.Type); ok {
			return t.Accounts
		}
	}
	return nil
}

// notHome is why network cannot be p's home (AccountRules.NotHome), ""
// when it can.
func (c *Config) notHome(p *Person, network string) string {
	if r := c.rulesOf(network); r != nil && r.NotHome != nil {
		return r.NotHome(p.Accounts[network])
	}
	return ""
}

// PeopleNotes lists what the networks' AccountRules.Note say of the
// accounts of people (the file's, or with the API's laid over them), c
// being the config file, sorted by path: not errors, the config is
// valid; `switchboard check` prints them, the API shows them.
func (c *Config) PeopleNotes(people map[string]*Person) []*FieldError {
	notes := &errorList{}
	for _, id := range sortedKeys(people) {
		p := people[id]
		if p == nil {
			continue
		}
		if r := c.rulesOf(p.Home); r != nil && c.heldElsewhere(p) {
			note := r.HomeNote
			if r.HomeNoteOf != nil {
				note = r.HomeNoteOf(p.Accounts[p.Home])
			}
			if note != "" {
				notes.add(join(join("people", id), "home"), "%s", note)
			}
		}
		for _, network := range sortedKeys(p.Accounts) {
			n := c.Networks[network]
			if n == nil {
				continue
			}
			if t, ok := lookupType(n.Type); ok && t.Accounts != nil && t.Accounts.Note != nil {
				t.Accounts.Note(&Problems{errs: notes, path: join(join(join("people", id), "accounts"), network)}, p.Accounts[network], network, c)
			}
		}
	}
	return notes.errs
}

// heldElsewhere reports whether Switchboard speaks as p on a network
// other than their home: an account there carries credentials.
func (c *Config) heldElsewhere(p *Person) bool {
	for network, a := range p.Accounts {
		if network != p.Home && len(a.Credentials()) > 0 {
			return true
		}
	}
	return false
}

// checkAccountID refuses what no network's account id looks like.
func checkAccountID(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return fmt.Errorf("empty account id")
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("account id %q contains a space or control character", id)
	}
	return nil
}

// checkLine refuses a name that would break a line of text.
func checkLine(s string) error {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("contains a line break or control character")
	}
	return nil
}

// PeopleMapping returns the people for mapping.NewPeople, with the account key
// of each network whose type has one.
func (c *Config) PeopleMapping() ([]mapping.Person, map[string]mapping.AccountKey) {
	people := make([]mapping.Person, 0, len(c.People))
	for _, id := range sortedKeys(c.People) {
		p := c.People[id]
		if p == nil {
			continue
		}
		mp := mapping.Person{ID: id, Name: p.Name, Avatar: p.Avatar, Home: p.Home, Accounts: make(map[string]string, len(p.Accounts))}
		for network, a := range p.Accounts {
			mp.Accounts[network] = a.ID
		}
		people = append(people, mp)
	}
	keys := map[string]mapping.AccountKey{}
	for name, n := range c.Networks {
		if n == nil {
			continue
		}
		if t, ok := lookupType(n.Type); ok && t.Accounts != nil && t.Accounts.Key != nil {
			keys[name] = t.Accounts.Key
		}
	}
	return people, keys
}

// CheckPeople validates a set of people, given as in the file's people
// section, against this configuration's networks, by the same rules,
// after the same defaults (applied to the people given: a name defaults
// to the id, home to the network of an only account). Errors name
// people.<id>...; the provisioning API validates its changes with it,
// with changed, the person it changes, checked last so that an account
// claimed twice is blamed on them.
func (c *Config) CheckPeople(people map[string]*Person, changed string) error {
	cc := *c
	cc.People = people
	cc.applyPeopleDefaults()
	errs := &errorList{}
	cc.validatePeople(errs, changed)
	return errs.err()
}

// Clone returns a deep copy of the person.
func (p *Person) Clone() *Person {
	if p == nil {
		return nil
	}
	c := *p
	c.Accounts = make(map[string]Account, len(p.Accounts))
	for network, a := range p.Accounts {
		c.Accounts[network] = a
	}
	return &c
}
