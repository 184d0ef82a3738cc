package config

import (
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// section is the type-specific part of a network (IRC, MQTT, ...).
// Adding a network type takes its struct, these methods, a field on Network
// and one entry in networkTypes.
type section interface {
	// setDefaults fills unset keys, including the Network's own ones
	// whose defaults depend on the type (the puppet template). given
	// tells whether a key (relative to the network: "flood.burst") was
	// in the file.
	setDefaults(name string, n *Network, given func(key string) bool)
	// validate reports problems with the section's keys; path is the
	// network's ("networks.libera").
	validate(errs *errorList, path string, n *Network)
	// checkRoom says why room is not a room of this network type; its
	// message follows "invalid <type> room %q: ".
	checkRoom(room string) error
}

// networkTypes maps each type name to the accessor of its section, which
// allocates the section when the network has none yet.
var networkTypes = map[string]func(*Network) section{
	"irc": func(n *Network) section {
		if n.IRC == nil {
			n.IRC = new(IRC)
		}
		return n.IRC
	},
	"mqtt": func(n *Network) section {
		if n.MQTT == nil {
			n.MQTT = new(MQTT)
		}
		return n.MQTT
	},
	"xmpp": func(n *Network) section {
		if n.XMPP == nil {
			n.XMPP = new(XMPP)
		}
		return n.XMPP
	},
	"matrix": func(n *Network) section {
		if n.Matrix == nil {
			n.Matrix = new(Matrix)
		}
		return n.Matrix
	},
	"webrtc": func(n *Network) section {
		if n.WebRTC == nil {
			n.WebRTC = new(WebRTC)
		}
		return n.WebRTC
	},
}

func typeNames() []string {
	ts := make([]string, 0, len(networkTypes))
	for t := range networkTypes {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// section returns the network's type-specific part, allocating it; nil
// when the type is unknown.
func (n *Network) section() section {
	get, ok := networkTypes[n.Type]
	if !ok {
		return nil
	}
	return get(n)
}

// sectionView is section without the allocation, for readers (Validate,
// MarshalYAML) that must not change a network built in code: a missing
// section reads as an empty one.
func (n *Network) sectionView() section {
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
