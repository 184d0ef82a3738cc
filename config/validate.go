package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

var (
	// Network names appear in room addresses, store keys and metric
	// labels, so they are kept to one unambiguous spelling.
	networkNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	// Link names appear in error paths and the store; dots or brackets
	// would make "links.a.b[0]" ambiguous.
	linkNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

	logLevels   = []string{"debug", "info", "warn", "error"}
	logFormats  = []string{"text", "json"}
	sqliteSyncs = []string{"full", "normal"}
	modes       = []string{"puppet", "relay"}
)

func (c *Config) validate(errs *errorList) {
	if strings.TrimSpace(c.DataDir) == "" {
		errs.add("data_dir", "required")
	}
	if err := checkStore(c.Store); err != nil {
		errs.add("store", "%v", err)
	}
	if !slices.Contains(sqliteSyncs, c.SQLiteSynchronous) {
		errs.add("sqlite_synchronous", "want one of %s, got %q", strings.Join(sqliteSyncs, ", "), c.SQLiteSynchronous)
	} else if c.SQLiteSynchronous != defaultSQLiteSync && c.Store != "sqlite" {
		errs.add("sqlite_synchronous", "only applies to the sqlite store")
	}
	c.Retention.validate(errs)
	if err := CheckHostPort(c.HTTP.Listen, false, true); err != nil {
		errs.add("http.listen", "%v", err)
	}
	if c.HTTP.ReadyGrace < 0 {
		errs.add("http.ready_grace", "must not be negative, got %v", c.HTTP.ReadyGrace)
	}
	if t := c.HTTP.APIToken; t != "" && len(t) < minAPIToken {
		errs.add("http.api_token", "too short: want at least %d characters", minAPIToken)
	}
	if err := checkPublicURL(c.HTTP.PublicURL); err != nil {
		errs.add("http.public_url", "%v", err)
	}
	c.validateAdmins(errs)
	if c.Broker != nil {
		if err := CheckHostPort(c.Broker.Listen, false, true); err != nil {
			errs.add("broker.listen", "%v", err)
		}
	}
	c.validateCluster(errs)
	if !slices.Contains(logLevels, c.Log.Level) {
		errs.add("log.level", "want one of %s, got %q", strings.Join(logLevels, ", "), c.Log.Level)
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		errs.add("log.format", "want one of %s, got %q", strings.Join(logFormats, ", "), c.Log.Format)
	}
	for _, name := range sortedKeys(c.Networks) {
		validateNetwork(errs, name, c.Networks[name])
	}
	c.validateSingles(errs)
	c.validateLinks(errs)
	c.validateLinkOptions(errs)
	c.validatePeople(errs, "")
}

// kickTypes lists the network types whose rooms can kick a puppet.
func kickTypes() []string {
	var names []string
	for _, t := range Types() {
		if t.Kicks {
			names = append(names, t.Name)
		}
	}
	return names
}

func validateNetwork(errs *errorList, name string, n *Network) {
	path := join("networks", name)
	if !networkNameRE.MatchString(name) {
		errs.add(path, "invalid network name %q (want lowercase letters, digits, _ and -)", name)
	}
	if n == nil {
		errs.add(join(path, "type"), "required (known: %s)", knownTypes())
		return
	}
	var sec Section
	typ, known := lookupType(n.Type)
	switch {
	case n.Type == "":
		errs.add(join(path, "type"), "required (known: %s)", knownTypes())
	case !known:
		errs.add(join(path, "type"), "unknown network type %q (known: %s)", n.Type, knownTypes())
	default:
		sec = n.sectionView()
	}
	if !slices.Contains(modes, n.Mode) {
		errs.add(join(path, "mode"), "want puppet or relay, got %q", n.Mode)
	}
	if n.KickBlocks && known && !typ.Kicks {
		if kt := kickTypes(); len(kt) > 0 {
			errs.add(join(path, "kick_blocks"), "only %s rooms kick, not %s", strings.Join(kt, ", "), n.Type)
		} else {
			errs.add(join(path, "kick_blocks"), "%s rooms do not kick", n.Type)
		}
	}
	p := n.Puppets
	if t := p.Template; t != "" && !strings.Contains(t, "{name}") && !strings.Contains(t, "{id}") {
		// Without either, every foreign sender would get the same name.
		errs.add(join(path, "puppets.template"), "must contain {name} or {id}")
	}
	if p.Max < 0 {
		errs.add(join(path, "puppets.max"), "must not be negative, got %d", p.Max)
	}
	if p.Idle <= 0 {
		errs.add(join(path, "puppets.idle"), "must be positive, got %v", p.Idle)
	}
	validateIgnore(errs, join(path, "ignore"), n.Ignore)
	if sec != nil {
		p := &Problems{errs: errs, path: path}
		if r, ok := sec.(RateLimited); ok {
			r.SenderRate().validate(p)
		}
		sec.Validate(p, n)
	}
}

// validateSingles allows one network of a type that says so (webrtc:
// it owns the HTTP paths of the signaling and the chat page).
func (c *Config) validateSingles(errs *errorList) {
	for _, t := range Types() {
		if t.Single == "" {
			continue
		}
		var names []string
		for _, name := range sortedKeys(c.Networks) {
			if n := c.Networks[name]; n != nil && n.Type == t.Name {
				names = append(names, name)
			}
		}
		for _, name := range names[min(1, len(names)):] {
			errs.add(join("networks", name), "a second %s network (%s is one): at most one is allowed, as %s", t.Name, names[0], t.Single)
		}
	}
}

// validateIgnore checks every pattern of an ignore list the way the
// bridge will read it.
func validateIgnore(errs *errorList, path string, patterns []string) {
	for i, p := range patterns {
		if _, err := mapping.ParsePattern(p); err != nil {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// validateLinkOptions checks link_options: each names a link of the file.
func (c *Config) validateLinkOptions(errs *errorList) {
	for _, name := range sortedKeys(c.LinkOptions) {
		path := join("link_options", name)
		if _, ok := c.LinkRooms[name]; !ok {
			errs.add(path, "no link %q in links", name)
		}
		if o := c.LinkOptions[name]; o != nil {
			validateIgnore(errs, join(path, "ignore"), o.Ignore)
		}
	}
}

func (c *Config) validateLinks(errs *errorList) {
	for _, name := range sortedKeys(c.LinkRooms) {
		if !linkNameRE.MatchString(name) {
			errs.add(join("links", name), "invalid link name %q (want letters, digits, _ and -)", name)
		}
	}
	links := c.parseLinks(errs)
	for _, name := range sortedKeys(links) {
		for i, r := range links[name] {
			path := fmt.Sprintf("links.%s[%d]", name, i)
			n, ok := c.Networks[r.Network]
			if !ok {
				errs.add(path, "unknown network %q", r.Network)
				continue
			}
			if n == nil || !isType(n.Type) {
				continue // the network's own error says why
			}
			if err := n.sectionView().CheckRoom(r.Room); err != nil {
				errs.add(path, "invalid %s room %q: %v", n.Type, r.Room, err)
			}
		}
	}
	// mapping.NewLinks owns the rules about how rooms combine into links
	// (no empty link, no room twice) but stops at the first problem. Adding
	// the links one at a time, in its own sorted order, and keeping only
	// those it accepts finds every problem instead.
	accepted := map[string][]bridge.RoomAddr{}
	for _, name := range sortedKeys(links) {
		accepted[name] = links[name]
		if _, err := mapping.NewLinks(accepted); err != nil {
			errs.addErr(err)
			delete(accepted, name)
		}
	}
}

// checkPublicURL checks http.public_url: optional, else an absolute http
// or https URL that links can be appended to (so no query or fragment).
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	if err := CheckHTTPURL(s, "https://bridge.example.org"); err != nil {
		return err
	}
	if u, _ := url.Parse(s); u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("%q has a query or fragment; want a base URL like https://bridge.example.org", s)
	}
	return nil
}

// minAPIToken keeps a guessable token out: the API can relink rooms.
const minAPIToken = 16

func (c *Config) validateAdmins(errs *errorList) {
	for i, a := range c.Admins {
		path := fmt.Sprintf("admins[%d]", i)
		network, id, ok := strings.Cut(a, ":")
		if !ok || strings.TrimSpace(id) == "" {
			errs.add(path, "want network:identity, got %q", a)
			continue
		}
		if _, named := c.Networks[network]; !named && !isType(network) {
			errs.add(path, "%q is neither a configured network nor a network type", network)
		}
	}
}

// CheckLinks validates a set of links, given as in the file's links
// section, against this configuration's networks, by the same rules.
// Errors name links.<name>[<index>].
func (c *Config) CheckLinks(links map[string][]string) error {
	cc := *c
	cc.LinkRooms = links
	errs := &errorList{}
	cc.validateLinks(errs)
	return errs.err()
}

// StoreDSN is the store as store.Open takes it: Store, with the SQLite
// settings that are not the defaults.
func (c *Config) StoreDSN() string {
	if c.Store == "sqlite" && c.SQLiteSynchronous == "normal" {
		return "sqlite?_synchronous=NORMAL"
	}
	return c.Store
}

// checkStore's messages never quote the value: a postgres URL may carry a
// password.
func checkStore(s string) error {
	if s == "sqlite" {
		return nil
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return errors.New(`want "sqlite" or a postgres:// URL`)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
	default:
		return fmt.Errorf(`want "sqlite" or a postgres:// URL, got a %s:// URL`, redactScheme(scheme))
	}
	if _, err := url.Parse(s); err != nil {
		return errors.New("not a valid postgres:// URL")
	}
	return nil
}

// schemeRE is what a real URL scheme looks like; anything else might be
// part of a secret and is not repeated in the error.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,19}$`)

func redactScheme(s string) string {
	if !schemeRE.MatchString(s) {
		return "non-postgres"
	}
	return s
}

// CheckHostPort checks "host:port". A listen address may leave out the
// host (all interfaces) and use port 0 (any free port); a server address
// may not.
func CheckHostPort(addr string, needHost, allowPortZero bool) error {
	if addr == "" {
		return errors.New("required (want host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if needHost && host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	return CheckPort(port, allowPortZero)
}

// CheckPort checks a port number, 1-65535 (0 too when allowZero).
func CheckPort(port string, allowZero bool) error {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 && !allowZero {
		return fmt.Errorf("invalid port %q (want 1-65535)", port)
	}
	return nil
}

func (r Retention) validate(errs *errorList) {
	for _, f := range []struct {
		key string
		age time.Duration
	}{{"retention.messages", r.Messages}, {"retention.ids", r.IDs}, {"retention.failed", r.Failed}} {
		if f.age < 0 {
			errs.add(f.key, "must not be negative, got %v", f.age)
		}
	}
	switch {
	case r.IDs > 0 && r.Messages == 0:
		errs.add("retention.ids", "needs retention.messages: an event's contents go before its ids")
	case r.IDs > 0 && r.IDs < r.Messages:
		errs.add("retention.ids", "must be at least retention.messages (%v), got %v", r.Messages, r.IDs)
	}
}

// CheckHTTPURL checks an absolute http:// or https:// URL with a host and
// no user info; example shows one in the message about an empty value.
func CheckHTTPURL(s, example string) error {
	if s == "" {
		return fmt.Errorf("required (for example %s)", example)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	return nil
}

func isType(name string) bool {
	_, ok := lookupType(name)
	return ok
}
