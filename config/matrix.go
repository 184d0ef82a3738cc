package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

const (
	defaultMatrixBot   = "switchboard"
	defaultMatrixGhost = "sb_{network}_{id}"
	defaultMatrixID    = "switchboard"
	// defaultMatrixTemplate is a ghost's display name: Matrix display
	// names hold anything, so the network can be shown plainly.
	defaultMatrixTemplate = "{name} ({network})"
	// DefaultMatrixMediaMaxSize is media.max_size when not set: 50 MiB.
	DefaultMatrixMediaMaxSize = 50 << 20
	// maxMatrixMediaMaxSize bounds media.max_size: a file is held in
	// memory while it is uploaded.
	maxMatrixMediaMaxSize = 1 << 30
)

func (c *Matrix) setDefaults(_ string, n *Network, given func(string) bool) {
	setDefault(&n.Puppets.Template, defaultMatrixTemplate)
	setDefault(&c.Media.Upload, true, given("media.upload"))
	setDefault(&c.Media.MaxSize, DefaultMatrixMediaMaxSize, given("media.max_size"))
	setDefault(&c.Bot, defaultMatrixBot)
	setDefault(&c.GhostLocalpart, defaultMatrixGhost)
	setDefault(&c.ID, defaultMatrixID)
}

func (c *Matrix) validate(errs *errorList, path string, _ *Network) {
	if err := checkHTTPURL(c.Homeserver, "http://127.0.0.1:8008"); err != nil {
		errs.add(join(path, "homeserver"), "%v", err)
	}
	if err := checkMatrixServerName(c.Domain); err != nil {
		errs.add(join(path, "domain"), "%v", err)
	}
	for key, tok := range map[string]string{"as_token": c.ASToken, "hs_token": c.HSToken} {
		switch {
		case tok == "":
			errs.add(join(path, key), "required (a long random string, the same as in the registration)")
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			errs.add(join(path, key), "contains a space or control character")
		}
	}
	if err := CheckMatrixLocalpart(c.Bot); err != nil {
		errs.add(join(path, "bot"), "%v", err)
	}
	if err := CheckGhostLocalpart(c.GhostLocalpart); err != nil {
		errs.add(join(path, "ghost_localpart"), "%v", err)
	} else if strings.HasPrefix(c.Bot, ghostPrefix(c.GhostLocalpart)) {
		errs.add(join(path, "bot"), "%q is inside the ghost namespace %q", c.Bot, c.GhostLocalpart)
	}
	if c.Listen != "" {
		if err := checkHostPort(c.Listen, false, true); err != nil {
			errs.add(join(path, "listen"), "%v", err)
		}
	}
	if strings.TrimSpace(c.ID) == "" {
		errs.add(join(path, "id"), "required")
	}
	if c.URL != "" {
		if err := checkHTTPURL(c.URL, "http://127.0.0.1:8080"); err != nil {
			errs.add(join(path, "url"), "%v", err)
		}
	}
	if c.Media.MaxSize <= 0 || c.Media.MaxSize > maxMatrixMediaMaxSize {
		errs.add(join(path, "media.max_size"), "want 1-%d bytes, got %d", maxMatrixMediaMaxSize, c.Media.MaxSize)
	}
}

// checkRoom accepts a room id (!opaque:server) or alias (#name:server).
func (*Matrix) checkRoom(room string) error {
	if room == "" || (room[0] != '!' && room[0] != '#') {
		return errors.New("a Matrix room is a room id !id:server or an alias #name:server")
	}
	local, server, ok := strings.Cut(room[1:], ":")
	switch {
	case !ok || local == "":
		return errors.New("a Matrix room is a room id !id:server or an alias #name:server")
	case strings.ContainsAny(room, " \t\r\n\x00"):
		return errors.New("a Matrix room contains no whitespace")
	case len(room) > 255:
		return errors.New("longer than 255 bytes")
	}
	return checkMatrixServerName(server)
}

func checkHTTPURL(s, example string) error {
	if s == "" {
		return fmt.Errorf("required (for example %s)", example)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	return nil
}

// checkMatrixServerName checks a server name: a host, optionally :port.
func checkMatrixServerName(s string) error {
	if s == "" {
		return errors.New("required (the homeserver's server name, example.org)")
	}
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		if err := checkPort(p, false); err != nil {
			return err
		}
		host = h
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-[]:", r))
	}) {
		return fmt.Errorf("%q is not a server name (host or host:port)", s)
	}
	return nil
}

// matrixLocalpartChar is the grammar of a user id's localpart.
func matrixLocalpartChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._=/-", r)
}

// CheckMatrixLocalpart says why s is not a user id localpart.
func CheckMatrixLocalpart(s string) error {
	switch {
	case s == "":
		return errors.New("required")
	case strings.ContainsFunc(s, func(r rune) bool { return !matrixLocalpartChar(r) }):
		return fmt.Errorf("%q is not a Matrix localpart (a-z, 0-9 and ._=/-)", s)
	case len(s) > 200:
		return errors.New("longer than 200 bytes")
	}
	return nil
}

// CheckGhostLocalpart checks a ghost localpart template: it holds
// {network} before {id}, each once, and literal localpart characters; the
// text between them holds "_" or "/" (which an encoded value never
// holds), so that a ghost's id can be read back.
func CheckGhostLocalpart(t string) error {
	ni, ii := strings.Index(t, "{network}"), strings.Index(t, "{id}")
	switch {
	case ni < 0 || ii < 0:
		return errors.New("must contain {network} and {id}")
	case strings.Count(t, "{network}") != 1 || strings.Count(t, "{id}") != 1:
		return errors.New("must contain {network} and {id} once each")
	case ii < ni:
		return errors.New("must have {network} before {id}")
	case ni == 0:
		return errors.New("must start with a literal prefix (sb_{network}_{id})")
	}
	between := t[ni+len("{network}") : ii]
	if !strings.ContainsAny(between, "_/") {
		return errors.New("must have _ or / between {network} and {id}")
	}
	lit := strings.NewReplacer("{network}", "", "{id}", "").Replace(t)
	if strings.ContainsFunc(lit, func(r rune) bool { return !matrixLocalpartChar(r) }) {
		return fmt.Errorf("%q: the text around the placeholders must be a-z, 0-9 and ._=/-", t)
	}
	if strings.ContainsRune(t[:ni], '=') {
		return errors.New("the prefix must not contain =")
	}
	return nil
}

func ghostPrefix(t string) string {
	prefix, _, _ := strings.Cut(t, "{")
	return prefix
}
