package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// redactedText replaces a secret, as net/url does for passwords.
const redactedText = "xxxxx"

// Fields tagged secret:"true" hold a secret; secret:"url" a URL whose
// password part (user info, or a password query parameter) is one. Tagging
// is all a new field needs: redaction and the tests are driven by the tag.

// String renders the configuration as YAML with its secrets replaced by
// "xxxxx", for "show me what you loaded" output.
func (c Config) String() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2) // as the example file is written
	if err := enc.Encode(redactedCopy(&c)); err != nil {
		return fmt.Sprintf("config: %v", err)
	}
	enc.Close()
	return b.String()
}

// LogValue summarises the configuration for slog. It holds strings only:
// a struct would reach the JSON handler, which ignores String methods.
func (c Config) LogValue() slog.Value {
	nets := make([]string, 0, len(c.Networks))
	for _, name := range sortedKeys(c.Networks) {
		typ := "?"
		if n := c.Networks[name]; n != nil {
			typ = n.Type
		}
		nets = append(nets, name+"("+typ+")")
	}
	broker := "off"
	if c.Broker != nil {
		broker = c.Broker.Listen
	}
	return slog.GroupValue(
		slog.String("data_dir", c.DataDir),
		slog.String("store", redactURL(c.Store)),
		slog.String("http", c.HTTP.Listen),
		slog.String("broker", broker),
		slog.String("networks", strings.Join(nets, " ")),
		slog.Int("links", len(c.LinkRooms)),
		slog.Int("people", len(c.People)),
	)
}

func (n Network) String() string       { return flowYAML(redactedCopy(&n)) }
func (n Network) LogValue() slog.Value { return slog.StringValue(n.String()) }
func (p Person) String() string        { return flowYAML(redactedCopy(&p)) }
func (p Person) LogValue() slog.Value  { return slog.StringValue(p.String()) }
func (a Account) String() string       { return flowYAML(redactedCopy(&a)) }
func (a Account) LogValue() slog.Value { return slog.StringValue(a.String()) }

// Redacted renders *p, a config struct (a Section, or a part of one), as
// one line of YAML with its secrets replaced by "xxxxx": what its String
// and LogValue methods return, so that printing or logging it never shows
// a secret.
func Redacted[T any](p *T) string { return flowYAML(redactedCopy(p)) }

func flowYAML(v any) string {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	var flow func(*yaml.Node)
	flow = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
			n.Style = yaml.FlowStyle
		}
		for _, c := range n.Content {
			flow(c)
		}
	}
	flow(&n)
	b, err := yaml.Marshal(&n)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return strings.TrimSpace(string(b))
}

// redactedCopy deep-copies *p, a pointer to a config struct, with its
// secrets redacted; the original is untouched.
func redactedCopy[T any](p *T) *T {
	out := new(T)
	redactValue(reflect.ValueOf(out).Elem(), reflect.ValueOf(p).Elem())
	return out
}

func redactValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Type().Elem()))
		redactValue(dst.Elem(), src.Elem())
	case reflect.Interface:
		// A network's Section: copied through its dynamic type, so that
		// the secrets of a protocol's struct are found like any other.
		if src.IsNil() {
			return
		}
		v := reflect.New(src.Elem().Type()).Elem()
		redactValue(v, src.Elem())
		dst.Set(v)
	case reflect.Struct:
		t := src.Type()
		dst.Set(src) // unexported fields and scalars
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			switch f.Tag.Get("secret") {
			case "true":
				if src.Field(i).Kind() == reflect.Map {
					redactMapValues(dst.Field(i), src.Field(i))
				} else if src.Field(i).String() != "" {
					dst.Field(i).SetString(redactedText)
				}
			case "url":
				if src.Field(i).Kind() == reflect.Slice { // a list of URLs
					redactURLs(dst.Field(i), src.Field(i))
				} else {
					dst.Field(i).SetString(redactURL(src.Field(i).String()))
				}
			default:
				redactValue(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		it := src.MapRange()
		for it.Next() {
			v := reflect.New(src.Type().Elem()).Elem()
			redactValue(v, it.Value())
			dst.SetMapIndex(it.Key(), v)
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			redactValue(dst.Index(i), src.Index(i))
		}
	default:
		dst.Set(src)
	}
}

// redactURLs copies a list of URLs (cluster.nats) with their passwords
// redacted, and a user name without a password too: in a NATS URL
// (nats://TOKEN@host) that is the token.
func redactURLs(dst, src reflect.Value) {
	if src.IsNil() {
		dst.SetZero()
		return
	}
	s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
	for i := range src.Len() {
		v := src.Index(i).String()
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if _, has := u.User.Password(); !has {
				u.User = url.User(redactedText)
				v = u.String()
			}
		}
		s.Index(i).SetString(redactURL(v))
	}
	dst.Set(s)
}

// redactMapValues copies a map of secrets (webrtc tokens), keeping its
// keys and redacting its values.
func redactMapValues(dst, src reflect.Value) {
	if src.IsNil() {
		dst.SetZero()
		return
	}
	m := reflect.MakeMapWithSize(src.Type(), src.Len())
	it := src.MapRange()
	for it.Next() {
		v := reflect.New(src.Type().Elem()).Elem()
		if it.Value().String() != "" {
			v.SetString(redactedText)
		}
		m.SetMapIndex(it.Key(), v)
	}
	dst.Set(m)
}

// redactURL hides the password of a URL. Text that does not parse but
// has an "@" in it is hidden whole, since it may be user:password@host.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		if strings.Contains(s, "@") {
			return redactedText
		}
		return s
	}
	q := u.Query()
	if !q.Has("password") {
		if _, has := u.User.Password(); !has {
			return s
		}
		return u.Redacted()
	}
	q.Set("password", redactedText)
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// RedactedURLs is a list of URLs (cluster.nats) as it may be shown:
// passwords and tokens replaced.
func RedactedURLs(urls []string) []string {
	var out []string
	redactURLs(reflect.ValueOf(&out).Elem(), reflect.ValueOf(urls))
	return out
}
