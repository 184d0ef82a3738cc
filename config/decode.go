package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into the config structs. It exists instead
// of yaml.Node.Decode because that stops at the first structural problem,
// ignores unknown keys (KnownFields only works on a Decoder stream), and
// reports "line 7: cannot unmarshal ..." where users need the key path;
// its messages also quote values, which may be secrets from the
// environment.
type decoder struct {
	errs *errorList
	// expanded holds the scalars whose value came from the environment:
	// their values are never quoted in errors.
	expanded map[*yaml.Node]bool
	// failed holds the scalars whose expansion failed; they stay unset so
	// that the one error about them is not followed by a type error.
	failed map[*yaml.Node]bool
	// given holds the paths of the scalars read, for defaults to tell an
	// explicit zero from a key left out.
	given map[string]bool
}

// pathDecoder is implemented by types that decode themselves, knowing
// where they are in the file.
type pathDecoder interface {
	decodeYAML(d *decoder, n *yaml.Node, path string)
}

var (
	pathDecoderType = reflect.TypeFor[pathDecoder]()
	durationType    = reflect.TypeFor[time.Duration]()
)

func (d *decoder) fail(path, format string, args ...any) {
	d.errs.add(path, format, args...)
}

// got describes a scalar for an error message, leaving out values that
// came from the environment.
func (d *decoder) got(n *yaml.Node) string {
	if d.expanded[n] {
		return " (value from the environment)"
	}
	return fmt.Sprintf(", got %q", n.Value)
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a scalar"
	}
}

// decode fills v (addressable) from n. A null node leaves v at its zero
// value, so "broker:" with nothing after it means no broker.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolveAlias(n)
	if d.failed[n] {
		return
	}
	if v.Addr().Type().Implements(pathDecoderType) {
		v.Addr().Interface().(pathDecoder).decodeYAML(d, n, path)
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path, nil)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	pairs, ok := d.pairs(n, path)
	if !ok {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(pairs)))
	}
	for _, p := range pairs {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(p.value, elem, join(path, p.key))
		v.SetMapIndex(reflect.ValueOf(p.key), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, "want a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// decodeStruct fills the fields of struct v from mapping n. Keys for which
// skip returns true are left alone, for a second pass into another struct
// to take (see Network); with skip nil every unknown key is an error.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, skip func(key string) bool) {
	pairs, ok := d.pairs(n, path)
	if !ok {
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range pairs {
		i, ok := fields[p.key]
		switch {
		case ok:
			d.decode(p.value, v.Field(i), join(path, p.key))
		case skip == nil:
			d.fail(join(path, p.key), "unknown key")
		case skip(p.key):
		default:
			d.fail(join(path, p.key), "unknown key")
		}
	}
}

type pair struct {
	key   string
	value *yaml.Node
}

// pairs lists a mapping's entries, applying merge keys ("<<: *anchor") so
// that networks can share settings; explicit keys win over merged ones.
func (d *decoder) pairs(n *yaml.Node, path string) ([]pair, bool) {
	n = resolveAlias(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.fail(path, "want a mapping, got %s", kindName(n))
		return nil, false
	}
	var own, merged []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(path, "a key is %s, want a name", kindName(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(val, join(path, "<<"))...)
			continue
		}
		if seen[k.Value] {
			d.fail(join(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		own = append(own, pair{k.Value, val})
	}
	for _, p := range merged {
		if !seen[p.key] {
			seen[p.key] = true
			own = append(own, p)
		}
	}
	return own, true
}

func (d *decoder) mergePairs(n *yaml.Node, path string) []pair {
	n = resolveAlias(n)
	var sources []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{n}
	case yaml.SequenceNode:
		sources = n.Content
	default:
		d.fail(path, "want a mapping or a list of mappings to merge")
		return nil
	}
	var out []pair
	seen := map[string]bool{}
	for _, s := range sources {
		ps, ok := d.pairs(s, path)
		if !ok {
			continue
		}
		// In a list of merges the earlier mapping wins (YAML merge spec).
		for _, p := range ps {
			if !seen[p.key] {
				seen[p.key] = true
				out = append(out, p)
			}
		}
	}
	return out
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "want %s, got %s", scalarWant(v.Type()), kindName(n))
		return
	}
	d.given[path] = true
	switch {
	case v.Type() == durationType:
		// Plain numbers are refused (is 30 seconds or minutes?) except 0,
		// which is the same in every unit.
		if n.Value == "0" {
			v.SetInt(0)
			return
		}
		dur, err := parseDuration(n.Value)
		if err != nil {
			d.fail(path, "want %s%s", scalarWant(v.Type()), d.got(n))
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		// Any scalar is taken as written: nick: 1234 is the string "1234".
		v.SetString(n.Value)
	default:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(path, "want %s%s", scalarWant(v.Type()), d.got(n))
		}
	}
}

func scalarWant(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 30s, 5m, 1h30m or 90d"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// join appends a map key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var fieldCache sync.Map // reflect.Type -> map[string]int

// fieldsOf maps the yaml keys of a struct to field indexes, following
// yaml.v3's rules: the tag's name, else the lowercased field name; "-"
// and unexported fields are not keys.
func fieldsOf(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

// parseDuration is time.ParseDuration that also takes a whole number of
// days, such as 90d, for the ages of retention.
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
