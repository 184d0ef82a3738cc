package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in every scalar value of
// the tree. It runs on parsed nodes rather than on the file's text so that
// a value from the environment (a password with ": " or "#" in it) stays
// one scalar and cannot add keys or cut a line short. Keys are not
// expanded: they name things, and paths in errors must match the file.
func expandEnv(root *yaml.Node, lookup func(string) (string, bool), d *decoder) {
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			expandScalar(n, path, lookup, d)
		}
		// Aliases are skipped: their anchor is expanded where it is defined.
	}
	walk(root, "")
}

func expandScalar(n *yaml.Node, path string, lookup func(string) (string, bool), d *decoder) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	v, err := expand(n.Value, lookup)
	if err != nil {
		d.fail(path, "%v", err)
		d.failed[n] = true
		return
	}
	if v == n.Value {
		return
	}
	n.Value = v
	d.expanded[n] = true
	// A plain scalar was typed by how "${PORT}" looked (a string); type it
	// again by its new value so port: ${PORT} can fill an integer. Quoted
	// and explicitly tagged scalars keep their type, and a value from the
	// environment is never null: "null" there is a password like any other.
	if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = ""
		if t := n.ShortTag(); t == "!!null" || t == "!!merge" {
			n.Tag = "!!str"
		} else {
			n.Tag = t
		}
	}
}

// expand does the substitution on one value. "$${" stands for a literal
// "${"; any other "$" is left alone, since passwords contain them.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ (write $${ for a literal ${)")
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			// The reference is not quoted: it may hold part of a secret.
			return "", fmt.Errorf("invalid environment variable reference (want ${NAME} or ${NAME:-default})")
		}
		val, ok := lookup(name)
		switch {
		case hasDef && val == "":
			// As in the shell, ":-" also replaces a variable set to "".
			val = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for an optional value)", name, name)
		}
		b.WriteString(val)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
