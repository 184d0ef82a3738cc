package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Section is a network type's own part of a network: the keys that sit
// beside type in the file. The protocol package that implements the type
// defines it (a pointer to its config struct), with its defaults and its
// validation, and registers it with its NetworkType. Fields tagged
// secret:"true" (or secret:"url", a URL whose password is one) are
// redacted wherever the configuration is shown.
type Section interface {
	// SetDefaults fills unset keys, including the Network's own ones
	// whose defaults depend on the type (the puppet template). name is
	// the network's name; given tells whether a key (relative to the
	// network: "flood.burst") was in the file, so that an explicit zero
	// is kept and validated.
	SetDefaults(name string, n *Network, given func(key string) bool)
	// Validate reports problems with the section's keys.
	Validate(p *Problems, n *Network)
	// CheckRoom says why room is not a room of this network type; its
	// message follows "invalid <type> room %q: ".
	CheckRoom(room string) error
}

// RateLimited is a Section with a limit on each sender per room (the
// rate keys); Network.SenderRate returns it.
type RateLimited interface {
	SenderRate() *Rate
}

// DefaultIgnorer is a Section whose network ignores some senders besides
// its ignore list (IRC's services).
type DefaultIgnorer interface {
	DefaultIgnore() []string
}

// NetworkType is what a protocol package registers about its network
// type's configuration (see adapters.Register, which registers it with
// the adapter).
type NetworkType struct {
	// Name is the type's name, the value of a network's type key.
	Name string
	// Config returns a new, empty section of the type.
	Config func() Section
	// Example is the type's part of switchboard.example.yaml: one or more
	// networks of the type, indented as entries of networks (two spaces),
	// every key shown and commented.
	Example string
	// Rooms describes the type's room names in one sentence for the
	// example's links section ("IRC rooms are channels (#name ...)").
	Rooms string
	// Kicks says that the type's rooms can kick a puppet, so kick_blocks
	// applies to its networks.
	Kicks bool
	// Single, when set, allows at most one network of the type and says
	// why ("it serves the HTTP paths /webrtc/ and /").
	Single string
	// Accounts, when set, says what a person's account on a network of
	// the type may be: which credentials it takes, how ids compare (see
	// AccountRules). Without it accounts are identities only, compared
	// exactly.
	Accounts *AccountRules
}

var (
	typesMu sync.RWMutex
	types   = map[string]NetworkType{}
)

// RegisterType makes a network type known to the configuration. It
// panics when the type is registered twice or its section has a key every
// network already has.
func RegisterType(t NetworkType) {
	if t.Name == "" || t.Config == nil {
		panic("config: network type without a name or Config")
	}
	common := fieldsOf(reflect.TypeFor[networkCommon]())
	for k := range fieldsOf(reflect.TypeOf(t.Config()).Elem()) {
		if _, ok := common[k]; ok {
			panic(fmt.Sprintf("config: %s key %q is also a key of every network", t.Name, k))
		}
	}
	typesMu.Lock()
	defer typesMu.Unlock()
	if _, dup := types[t.Name]; dup {
		panic("config: network type registered twice: " + t.Name)
	}
	types[t.Name] = t
}

// Types lists the registered network types, sorted by name.
func Types() []NetworkType {
	typesMu.RLock()
	defer typesMu.RUnlock()
	ts := make([]NetworkType, 0, len(types))
	for _, t := range types {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b NetworkType) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

func lookupType(name string) (NetworkType, bool) {
	typesMu.RLock()
	defer typesMu.RUnlock()
	t, ok := types[name]
	return t, ok
}

func typeNames() []string {
	var names []string
	for _, t := range Types() {
		names = append(names, t.Name)
	}
	return names
}

// section returns the network's type-specific part, allocating it; nil
// when the type is unknown.
func (n *Network) section() Section {
	t, ok := lookupType(n.Type)
	if !ok {
		return nil
	}
	if n.Section == nil {
		n.Section = t.Config()
	}
	return n.Section
}

// sectionView is section without the allocation, for readers (Validate,
// MarshalYAML) that must not change a network built in code: a missing
// section reads as an empty one.
func (n *Network) sectionView() Section {
	cp := *n
	return cp.section()
}

// networkCommon is Network without its methods, so decoding and encoding
// its fields does not recurse into Network's own hooks.
type networkCommon Network

// decodeYAML decodes the node twice: once into the fields every network
// has, which gives the type, and once into that type's section. A key
// neither knows is an error; with an unknown type nothing can be said
// about the other keys, so only the type is reported (by validation).
func (n *Network) decodeYAML(d *decoder, node *yaml.Node, path string) {
	*n = Network{}
	node = resolveAlias(node)
	common := reflect.ValueOf((*networkCommon)(n)).Elem()
	if isNull(node) {
		return
	}
	if node.Kind != yaml.MappingNode {
		d.fail(path, "want a mapping, got %s", kindName(node))
		return
	}

	// The first pass leaves the section's keys alone; what it cannot place
	// is checked against the section once the type is known.
	var unplaced []string
	d.decodeStruct(node, common, path, func(key string) bool {
		unplaced = append(unplaced, key)
		return true
	})
	sec := n.section()
	if sec == nil {
		return
	}
	d.decodeStruct(node, reflect.ValueOf(sec).Elem(), path, func(string) bool { return true })
	secKeys := fieldsOf(reflect.TypeOf(sec).Elem())
	for _, k := range unplaced {
		if _, ok := secKeys[k]; !ok {
			d.fail(join(path, k), "unknown key for a network of type %s", n.Type)
		}
	}
}

// UnmarshalYAML decodes a network as Parse does, minus the environment
// expansion: the type-specific keys sit beside type. Error paths are
// relative to the network.
func (n *Network) UnmarshalYAML(node *yaml.Node) error {
	d := newDecoder()
	n.decodeYAML(d, node, "")
	return d.errs.err()
}

// MarshalYAML writes the section's keys beside the common ones, the way
// they are read.
func (n Network) MarshalYAML() (any, error) {
	var out yaml.Node
	if err := out.Encode((*networkCommon)(&n)); err != nil {
		return nil, err
	}
	if sec := n.sectionView(); sec != nil {
		var s yaml.Node
		if err := s.Encode(sec); err != nil {
			return nil, err
		}
		out.Content = append(out.Content, s.Content...)
	}
	return &out, nil
}

func newDecoder() *decoder {
	return &decoder{
		errs:     &errorList{},
		expanded: map[*yaml.Node]bool{},
		failed:   map[*yaml.Node]bool{},
		given:    map[string]bool{},
	}
}

func knownTypes() string { return strings.Join(typeNames(), ", ") }
