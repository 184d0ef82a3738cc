package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	defaultIRCRealname     = "Switchboard bridge"
	defaultIRCMaxLineBytes = 512
	defaultIRCReconnectMax = 2 * time.Minute
	defaultFloodBurst      = 5
	defaultFloodInterval   = time.Second
	// DefaultIRCMaxMessageLines is max_message_lines when not given; the
	// IRC adapter applies it to a config that did not go through Load.
	DefaultIRCMaxMessageLines = 5
	// maxIRCChannelBytes is RFC 2812's limit; servers may allow more, but
	// a longer name would not be portable across networks.
	maxIRCChannelBytes = 50
)

func (c *IRC) setDefaults(_ string, n *Network, given func(string) bool) {
	setDefault(&n.Puppets.Template, defaultPuppetTemplate)
	setDefault(&c.Username, c.Nick)
	setDefault(&c.Realname, defaultIRCRealname)
	setDefault(&c.MaxLineBytes, defaultIRCMaxLineBytes, given("max_line_bytes"))
	setDefault(&c.ReconnectMax, defaultIRCReconnectMax, given("reconnect_max"))
	setDefault(&c.MaxMessageLines, DefaultIRCMaxMessageLines, given("max_message_lines"))
	setDefault(&c.Flood.Burst, defaultFloodBurst, given("flood.burst"))
	setDefault(&c.Flood.Interval, defaultFloodInterval, given("flood.interval"))
	setDefault(&c.IgnoreServices, true, given("ignore_services"))
}

func (c *IRC) validate(errs *errorList, path string, n *Network) {
	if err := checkHostPort(c.Server, true, false); err != nil {
		errs.add(join(path, "server"), "%v", err)
	}
	if c.TLSInsecureSkipVerify && !c.TLS {
		// Likely a belief that TLS is on; say so rather than connect in
		// plain text.
		errs.add(join(path, "tls_insecure_skip_verify"), "set without tls: true")
	}
	if err := checkIRCNick(c.Nick); err != nil {
		errs.add(join(path, "nick"), "%v", err)
	}
	if strings.ContainsAny(c.Username, " @\x00\r\n") {
		errs.add(join(path, "username"), "%q contains a space, @ or a control character", c.Username)
	}
	if strings.ContainsAny(c.Realname, "\x00\r\n") {
		errs.add(join(path, "realname"), "contains a line break or NUL")
	}
	if strings.ContainsAny(c.Password, "\x00\r\n") {
		errs.add(join(path, "password"), "contains a line break or NUL")
	}
	if c.SASL != nil {
		p := join(path, "sasl")
		if c.SASL.User == "" {
			errs.add(join(p, "user"), "required when sasl is set")
		}
		if c.SASL.Password == "" {
			errs.add(join(p, "password"), "required when sasl is set")
		}
	}
	if c.Flood.Burst < 1 {
		errs.add(join(path, "flood.burst"), "must be at least 1, got %d", c.Flood.Burst)
	}
	if c.Flood.Interval < 0 {
		errs.add(join(path, "flood.interval"), "must not be negative, got %v", c.Flood.Interval)
	}
	if c.MaxLineBytes < 64 {
		// Below this the prefix and command leave no room for text.
		errs.add(join(path, "max_line_bytes"), "must be at least 64, got %d", c.MaxLineBytes)
	}
	if c.MaxMessageLines < 2 {
		// One line for the text, one for the link to the whole.
		errs.add(join(path, "max_message_lines"), "must be at least 2, got %d", c.MaxMessageLines)
	}
	if c.ReconnectMax <= 0 {
		errs.add(join(path, "reconnect_max"), "must be positive, got %v", c.ReconnectMax)
	}
}

func (*IRC) checkRoom(room string) error {
	switch {
	case room[0] != '#' && room[0] != '&':
		return errors.New("an IRC channel starts with # or &")
	case strings.ContainsAny(room, " ,\a"):
		return errors.New("an IRC channel contains no space, comma or BEL")
	case len(room) > maxIRCChannelBytes:
		return fmt.Errorf("an IRC channel is at most %d bytes, this is %d", maxIRCChannelBytes, len(room))
	}
	return nil
}

// checkIRCNick applies RFC 2812: letters, digits and []\`_^{|}-, not
// starting with a digit or "-".
func checkIRCNick(nick string) error {
	if nick == "" {
		return errors.New("required")
	}
	for i, r := range nick {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune("[]\\`_^{|}", r):
		case r >= '0' && r <= '9', r == '-':
			if i == 0 {
				return fmt.Errorf("invalid IRC nick %q: must not start with a digit or -", nick)
			}
		default:
			return fmt.Errorf("invalid IRC nick %q: %q is not allowed (letters, digits and []\\`_^{|}- are)", nick, r)
		}
	}
	return nil
}
