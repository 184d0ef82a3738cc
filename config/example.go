package config

import (
	_ "embed"
	"strings"
)

// The example file is put together from the service's own parts (here)
// and each network type's (NetworkType.Example and Rooms), so that a
// protocol package documents its keys beside their code.
var (
	//go:embed example_head.yaml
	exampleHead string
	//go:embed example_tail.yaml
	exampleTail string
)

// Example returns switchboard.example.yaml for the registered network
// types: the service's keys, then every type's networks in the order of
// the type names, then links, link options and admins.
func Example() []byte {
	var b strings.Builder
	b.WriteString(exampleHead)
	var rooms []string
	for i, t := range Types() {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(strings.TrimRight(t.Example, "\n") + "\n")
		if t.Rooms != "" {
			rooms = append(rooms, t.Rooms)
		}
	}
	b.WriteString("\n")
	b.WriteString(strings.Replace(exampleTail, "{{rooms}}\n", comment(strings.Join(rooms, " "), 76), 1))
	return []byte(b.String())
}

// comment wraps text into "# " lines of at most width characters.
func comment(text string, width int) string {
	var b strings.Builder
	line := "#"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > width && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + w
	}
	if line != "#" {
		b.WriteString(line + "\n")
	}
	return b.String()
}
