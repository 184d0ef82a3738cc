package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

const (
	defaultDataDir        = "./data"
	defaultStore          = "sqlite"
	defaultSQLiteSync     = "full"
	defaultHTTPListen     = "127.0.0.1:8080"
	defaultBrokerListen   = "127.0.0.1:1883"
	defaultReadyGrace     = 30 * time.Second
	defaultRetainMessages = 90 * 24 * time.Hour
	defaultRetainIDs      = 365 * 24 * time.Hour
	defaultRetainFailed   = 30 * 24 * time.Hour
	defaultLogLevel       = "info"
	defaultLogFormat      = "text"
)

// The defaults of the keys every network has, for adapters that build a
// network's settings from a Network made in code (tests) rather than
// loaded.
const (
	DefaultMode       = "puppet"
	DefaultPuppetMax  = 50
	DefaultPuppetIdle = 30 * time.Minute
)

// Load reads and parses a configuration file; see Parse. Errors about the
// contents name key paths, not the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes a configuration, expands ${NAME} and ${NAME:-default} in
// its values from the environment, fills in defaults and validates it. The
// error lists every problem found, each naming its key path.
func Parse(data []byte) (*Config, error) {
	return parse(data, os.LookupEnv)
}

// ParseEnv is Parse with the environment given as a map instead of the
// process's: for tests, and for callers that hold their own.
func ParseEnv(data []byte, env map[string]string) (*Config, error) {
	return parse(data, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

func parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		// A second document would be silently ignored otherwise.
		return nil, errors.New("config holds more than one YAML document")
	}

	d := newDecoder()
	expandEnv(&root, lookup, d)
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	c := &Config{}
	d.decodeStruct(doc, reflect.ValueOf(c).Elem(), "", nil)

	errs := d.errs
	errs.silence()
	c.applyDefaults(func(path string) bool { return d.given[path] })
	c.validate(errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// defaultYAML is the configuration "switchboard run" uses without a
// file: the embedded broker, one MQTT network on it, the WebRTC chat page
// (for a browser on this host) and a link of the two, so that a first
// run works with nothing else installed.
const defaultYAML = `
broker: {}
networks:
  local: {type: mqtt, broker: "tcp://` + defaultBrokerListen + `"}
  web: {type: webrtc, loopback_candidates: true}
links:
  lobby: ["local:switchboard/lobby", "web:lobby"]
`

// Default is the configuration "switchboard run" uses without a file (see
// defaultYAML). It needs the mqtt and webrtc network types registered, as
// the binary does; it panics without them.
func Default() *Config {
	c, err := parse([]byte(defaultYAML), func(string) (string, bool) { return "", false })
	if err != nil {
		panic("config: the embedded default configuration: " + err.Error())
	}
	return c
}

// applyDefaults fills in what the file left out. An empty string always
// counts as left out, so that "${VAR:-}" can ask for the default; a zero
// number or duration only when the key was not given, so that an
// explicit 0 is validated (burst: 0 is an error, interval: 0 means no
// pacing) rather than silently replaced.
func (c *Config) applyDefaults(given func(path string) bool) {
	SetDefault(&c.DataDir, defaultDataDir)
	SetDefault(&c.Store, defaultStore)
	SetDefault(&c.SQLiteSynchronous, defaultSQLiteSync)
	SetDefault(&c.Retention.Messages, defaultRetainMessages, given("retention.messages"))
	// Who keeps the contents for ever keeps the ids too, unless told.
	SetDefault(&c.Retention.IDs, defaultRetainIDs, given("retention.ids"), c.Retention.Messages == 0)
	SetDefault(&c.Retention.Failed, defaultRetainFailed, given("retention.failed"))
	SetDefault(&c.HTTP.Listen, defaultHTTPListen)
	SetDefault(&c.HTTP.ReadyGrace, defaultReadyGrace, given("http.ready_grace"))
	// Links are the base plus "/media/...": one spelling, however the
	// file wrote it.
	c.HTTP.PublicURL = strings.TrimRight(c.HTTP.PublicURL, "/")
	if c.Broker != nil {
		SetDefault(&c.Broker.Listen, defaultBrokerListen)
	}
	c.Cluster.setDefaults(given)
	SetDefault(&c.Log.Level, defaultLogLevel)
	SetDefault(&c.Log.Format, defaultLogFormat)
	c.applyPeopleDefaults()
	for name, n := range c.Networks {
		if n == nil {
			continue
		}
		path := join("networks", name)
		netGiven := func(key string) bool { return given(join(path, key)) }
		SetDefault(&n.Mode, DefaultMode)
		// Max 0 means the default even when written (see Puppets).
		SetDefault(&n.Puppets.Max, DefaultPuppetMax)
		SetDefault(&n.Puppets.Idle, DefaultPuppetIdle, netGiven("puppets.idle"))
		if sec := n.section(); sec != nil {
			sec.SetDefaults(name, n, netGiven)
		}
	}
}

// SetDefault sets *p to def when it is zero and, if given is passed, the
// key was not in the file; for a Section's SetDefaults.
func SetDefault[T comparable](p *T, def T, given ...bool) {
	var zero T
	if *p == zero && !slices.Contains(given, true) {
		*p = def
	}
}

// Validate checks a configuration that already has its defaults, as Load,
// Parse and Default return it; callers that change one can check it again.
func (c *Config) Validate() error {
	errs := &errorList{}
	c.validate(errs)
	return errs.err()
}

// Links returns the links with their room addresses parsed.
func (c *Config) Links() (map[string][]bridge.RoomAddr, error) {
	errs := &errorList{}
	links := c.parseLinks(errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return links, nil
}

// parseLinks parses every room address it can, reporting the rest. A link
// with a bad address is left out, so the result is only complete when no
// error was reported.
func (c *Config) parseLinks(errs *errorList) map[string][]bridge.RoomAddr {
	links := make(map[string][]bridge.RoomAddr, len(c.LinkRooms))
	for _, name := range sortedKeys(c.LinkRooms) {
		rooms := make([]bridge.RoomAddr, 0, len(c.LinkRooms[name]))
		ok := true
		for i, s := range c.LinkRooms[name] {
			r, err := mapping.ParseRoom(s)
			if err != nil {
				errs.add(fmt.Sprintf("links.%s[%d]", name, i), "%v", err)
				ok = false
				continue
			}
			rooms = append(rooms, r)
		}
		if ok {
			links[name] = rooms
		}
	}
	return links
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// IgnoreLists returns every network's ignore list, with the patterns its
// type adds by default (DefaultIgnorer: IRC services), and every link's.
func (c *Config) IgnoreLists() (networks map[string]mapping.NetworkIgnore, links map[string][]string) {
	networks = make(map[string]mapping.NetworkIgnore, len(c.Networks))
	for name, n := range c.Networks {
		if n == nil {
			continue
		}
		patterns := slices.Clone(n.Ignore)
		if d, ok := n.Section.(DefaultIgnorer); ok {
			patterns = append(slices.Clone(d.DefaultIgnore()), patterns...)
		}
		networks[name] = mapping.NetworkIgnore{Type: n.Type, Patterns: patterns}
	}
	links = make(map[string][]string, len(c.LinkOptions))
	for name, o := range c.LinkOptions {
		if o != nil && len(o.Ignore) > 0 {
			links[name] = slices.Clone(o.Ignore)
		}
	}
	return networks, links
}
