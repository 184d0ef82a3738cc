package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

const (
	defaultXMPPNick      = "switchboard"
	defaultXMPPMaxStanza = 256 * 1024
	// defaultXMPPTemplate is how a foreign sender's MUC nick reads: MUC
	// nicks may hold spaces and any letter, so the network can be shown
	// plainly.
	defaultXMPPTemplate = "{name} ({network})"
	// minXMPPMaxStanza leaves room for a stanza's envelope and some text.
	minXMPPMaxStanza = 4096
	// minXMPPMaxMessage leaves room for the cut marker, a link and some
	// text.
	minXMPPMaxMessage = 256
)

func (c *XMPP) setDefaults(_ string, n *Network, given func(string) bool) {
	setDefault(&n.Puppets.Template, defaultXMPPTemplate)
	// A client account cannot have puppets: without a component, relay is
	// the only mode that works, so it is the default there.
	if c.Component == nil && c.JID != "" && !given("mode") {
		n.Mode = "relay"
	}
	setDefault(&c.Nick, defaultXMPPNick)
	setDefault(&c.MaxStanza, defaultXMPPMaxStanza, given("max_stanza"))
}

func (c *XMPP) validate(errs *errorList, path string, n *Network) {
	if err := checkHostPort(c.Server, true, false); err != nil {
		errs.add(join(path, "server"), "%v", err)
	}
	switch {
	case c.Component != nil && c.JID != "":
		errs.add(join(path, "jid"), "set together with component: use component (puppets) or jid and password (a relay bot), not both")
	case c.Component == nil && c.JID == "":
		errs.add(join(path, "component"), "required unless jid is set (component: {domain, secret} for puppets, or jid and password for a relay bot)")
	}
	if c.Component != nil {
		p := join(path, "component")
		if err := checkXMPPDomain(c.Component.Domain); err != nil {
			errs.add(join(p, "domain"), "%v", err)
		}
		if c.Component.Secret == "" {
			errs.add(join(p, "secret"), "required")
		} else if strings.ContainsAny(c.Component.Secret, "\x00\r\n") {
			errs.add(join(p, "secret"), "contains a line break or NUL")
		}
		if c.InsecurePlaintext {
			errs.add(join(path, "insecure_plaintext"), "only applies to jid (a component connection has no TLS)")
		}
	}
	if c.JID != "" {
		if err := checkBareJID(c.JID, "an account"); err != nil {
			errs.add(join(path, "jid"), "%v", err)
		}
		if c.Password == "" {
			errs.add(join(path, "password"), "required with jid")
		}
		if n.Mode == "puppet" && c.Component == nil {
			errs.add(join(path, "mode"), "puppet needs a component; with jid use mode: relay")
		}
	} else if c.Password != "" && c.Component != nil {
		errs.add(join(path, "password"), "set without jid (the component authenticates with component.secret)")
	}
	if err := checkMUCNick(c.Nick); err != nil {
		errs.add(join(path, "nick"), "%v", err)
	}
	if c.MaxStanza < minXMPPMaxStanza {
		errs.add(join(path, "max_stanza"), "must be at least %d, got %d", minXMPPMaxStanza, c.MaxStanza)
	}
	if c.MaxMessageBytes != 0 && c.MaxMessageBytes < minXMPPMaxMessage {
		errs.add(join(path, "max_message_bytes"), "must be 0 (no limit) or at least %d, got %d", minXMPPMaxMessage, c.MaxMessageBytes)
	}
}

func (*XMPP) checkRoom(room string) error {
	return checkBareJID(room, "a MUC room")
}

// checkBareJID says why s is not a bare JID with a localpart
// (name@domain).
func checkBareJID(s, what string) error {
	j, err := jid.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s is a JID name@domain: %v", what, err)
	case j.Localpart() == "":
		return fmt.Errorf("%s is a JID name@domain, this has no name@", what)
	case j.Resourcepart() != "":
		return fmt.Errorf("%s is a bare JID name@domain, without /resource", what)
	}
	return nil
}

func checkXMPPDomain(s string) error {
	if s == "" {
		return errors.New("required (the component's domain, bridge.example.org)")
	}
	j, err := jid.Parse(s)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" || strings.ContainsAny(s, "@/") {
		return fmt.Errorf("%q is not a domain name", s)
	}
	return nil
}

// checkMUCNick applies what a MUC nick (a JID resourcepart) allows.
func checkMUCNick(nick string) error {
	switch {
	case strings.TrimSpace(nick) == "":
		return errors.New("required")
	case !utf8.ValidString(nick) || strings.ContainsFunc(nick, unicode.IsControl):
		return fmt.Errorf("%q contains a control character", nick)
	case len(nick) > 1023:
		return errors.New("longer than 1023 bytes")
	}
	if _, err := jid.New("room", "example.org", nick); err != nil {
		return fmt.Errorf("%q is not a valid MUC nick: %v", nick, err)
	}
	return nil
}
