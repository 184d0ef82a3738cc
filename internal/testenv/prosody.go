package testenv

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// XMPPServer is a Prosody or an ejabberd started for a test: one
// virtual host with users, a MUC service with MAM (so groupchat messages
// carry a stanza-id) and an external component (XEP-0114).
type XMPPServer struct {
	// Software is "prosody" or "ejabberd", to name subtests by.
	Software string
	// Domain is the virtual host users live on ("localhost").
	Domain string
	// MUC is the MUC service's domain ("conference.localhost").
	MUC string
	// Component and ComponentSecret are the external component's domain
	// and shared secret.
	Component       string
	ComponentSecret string
	// C2SAddr and ComponentAddr are the client and component ports,
	// "127.0.0.1:PORT".
	C2SAddr       string
	ComponentAddr string
	// Upload is the HTTP upload service's domain (XEP-0363,
	// mod_http_file_share) and UploadURL the base of its URLs, when
	// XMPPServerConfig.FileShareLimit asked for one; else "".
	Upload, UploadURL string
	// Process lets a test stop, kill or restart the server.
	Process *Process
	// Dir holds the generated config, data and pid file; Config is the
	// config file's path.
	Dir    string
	Config string

	// register creates an account: prosodyctl, or in-band registration.
	register func(t testing.TB, user, password string)
	// httpPort is the upload service's port, 0 without one.
	httpPort int
}

// XMPPServerConfig tunes the generated Prosody config. The zero value is
// what Prosody(t) uses.
type XMPPServerConfig struct {
	// Users are registered before the server starts (name -> password).
	Users map[string]string
	// Debug logs at debug level (every stanza) instead of info.
	Debug bool
	// Global and MUC are appended verbatim to the global section and to
	// the MUC component's section.
	Global, MUCExtra string
	// MUCModules are loaded on the MUC service besides muc_mam, from
	// Prosody's own modules or Debian's prosody-modules (for instance
	// "muc_moderation"); a test needing one that is not installed is
	// skipped (fails on CI).
	MUCModules []string
	// Extra is appended at the very end (sections of their own).
	Extra string
	// FileShareLimit, when positive, adds an HTTP upload service
	// (mod_http_file_share on upload.<Domain>, HTTP on a free loopback
	// port) taking files up to this many bytes.
	FileShareLimit int64
}

// prosodyModuleDirs are where Prosody's and prosody-modules' modules may
// be, as mod_NAME.lua or mod_NAME/mod_NAME.lua; Debian installs both
// into the first, which is Prosody's default plugin path.
var prosodyModuleDirs = []string{"/usr/lib/prosody/modules", "/usr/share/prosody-modules", "/usr/local/lib/prosody/modules"}

// prosodyModules finds each module and returns the directories to add to
// plugin_paths for them.
func prosodyModules(t testing.TB, names []string) []string {
	t.Helper()
	var paths []string
	for _, name := range names {
		found := ""
		for _, dir := range prosodyModuleDirs {
			for _, f := range []string{"mod_" + name + ".lua", filepath.Join("mod_"+name, "mod_"+name+".lua")} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil && found == "" {
					found = dir
				}
			}
		}
		switch {
		case found == "" && os.Getenv("CI") != "":
			t.Fatalf("prosody module %s not installed (.ci/run should install prosody-modules)", name)
		case found == "":
			t.Skipf("prosody module %s not installed", name)
		case found != prosodyModuleDirs[0] && !slices.Contains(paths, found):
			paths = append(paths, found)
		}
	}
	return paths
}

// Prosody starts Debian's Prosody 0.12 on free loopback ports and stops it
// when the test ends.
func Prosody(t testing.TB) *XMPPServer { return ProsodyWith(t, XMPPServerConfig{}) }

// ProsodyWith is Prosody with a tuned config.
func ProsodyWith(t testing.TB, c XMPPServerConfig) *XMPPServer {
	t.Helper()
	bin := Need(t, "/usr/bin/prosody")
	ctl := Need(t, "/usr/bin/prosodyctl")
	s, c2s, comp := newXMPPServer(t, "prosody", "data", "certs")
	dir := s.Dir
	s.register = func(t testing.TB, user, password string) {
		t.Helper()
		cmd := exec.Command(ctl, "--config", s.Config, "register", user, s.Domain, password)
		cmd.Dir = s.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("prosodyctl register %s: %v\n%s", user, err, out)
		}
	}
	if paths := prosodyModules(t, c.MUCModules); len(paths) > 0 {
		c.Global += "\nplugin_paths = { " + luaStrings(paths) + " }\n"
	}
	ports := []int{c2s, comp}
	if c.FileShareLimit > 0 {
		ports = append(ports, s.fileShare(t, &c))
	}
	s.Config = WriteFile(t, dir, "prosody.cfg.lua", s.config(t, c2s, comp, c))
	for user, pass := range c.Users {
		s.Register(t, user, pass)
	}
	p := &Process{Name: bin, Args: []string{"-F", "--config", s.Config}, Dir: dir, Ready: s.C2SAddr}
	p.Start(t)
	s.Process = p
	s.waitComponentPort(t)
	if err := listensOnlyOnPorts(p.Pid(), ports...); err != nil {
		t.Fatalf("prosody: %v", err)
	}
	return s
}

// fileShare sets up the HTTP upload service FileShareLimit asks for: it
// adds its lines to c and returns its HTTP port.
func (s *XMPPServer) fileShare(t testing.TB, c *XMPPServerConfig) int {
	t.Helper()
	prosodyModules(t, []string{"http_file_share"})
	port := FreePort(t)
	s.httpPort = port
	s.Upload = "upload." + s.Domain
	s.UploadURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	// Slot URLs are made from http_external_url; requests for any Host
	// reach the service through http_default_host. (http_ports is set
	// by config: an option set twice makes Prosody warn, and its warning
	// fails on a config file whose path is long.)
	c.Global += fmt.Sprintf(`
http_interfaces = { "127.0.0.1" }
https_interfaces = { }
http_default_host = %q
`, s.Upload)
	c.Extra += fmt.Sprintf(`
Component %q "http_file_share"
	http_external_url = %q
	http_file_share_size_limit = %d
	http_file_share_daily_quota = %d
`, s.Upload, s.UploadURL+"/", c.FileShareLimit, 1000*c.FileShareLimit)
	return port
}

// newXMPPServer is the XMPPServer a helper starts software as: the
// domains every test expects, two free loopback ports (client and
// component), a temp dir with subdirs.
func newXMPPServer(t testing.TB, software string, subdirs ...string) (s *XMPPServer, c2s, comp int) {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range subdirs {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	c2s, comp = FreePort(t), FreePort(t)
	for comp == c2s {
		comp = FreePort(t)
	}
	return &XMPPServer{
		Software:        software,
		Domain:          "localhost",
		MUC:             "conference.localhost",
		Component:       "bridge.localhost",
		ComponentSecret: "component-secret-" + strconv.Itoa(os.Getpid()),
		C2SAddr:         fmt.Sprintf("127.0.0.1:%d", c2s),
		ComponentAddr:   fmt.Sprintf("127.0.0.1:%d", comp),
		Dir:             dir,
	}, c2s, comp
}

func (s *XMPPServer) config(t testing.TB, c2s, comp int, c XMPPServerConfig) string {
	t.Helper()
	snippet := Snippet(t, "prosody.cfg.lua", map[string]string{
		"bridge.example.org":              s.Component,
		"conference.example.org":          s.MUC,
		"CHANGE-ME-component-secret":      s.ComponentSecret,
		`modules_enabled = { "muc_mam" }`: "modules_enabled = { " + luaStrings(append([]string{"muc_mam"}, c.MUCModules...)) + " }",
	})
	httpPorts := ""
	if s.httpPort != 0 {
		httpPorts = strconv.Itoa(s.httpPort)
	}
	level := "info"
	if c.Debug {
		level = "debug"
	}
	// Only the client and component ports are opened, on loopback: s2s
	// is disabled and no module that serves HTTP or proxies is loaded
	// (but the upload service FileShareLimit asks for, on loopback).
	return fmt.Sprintf(`-- Generated for a Switchboard test.
run_as_root = true
pidfile = %[1]q
data_path = %[2]q
certificates = %[10]q
log = { { levels = { min = %[3]q }, to = "console" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { %[4]d }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
component_ports = { %[5]d }
component_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { %[12]s }
https_ports = { }
-- vcard: users publish vcard-temp cards, whose photos are their avatars.
modules_enabled = { "roster", "saslauth", "disco", "ping", "time", "version", "vcard" }
modules_disabled = { "s2s", "offline", "posix" }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
s2s_require_encryption = false
muc_room_locking = false
muc_room_default_public_jids = true
muc_log_all_rooms = true
%[6]s

VirtualHost %[7]q

-- The setup guide's snippet (docs/snippets/prosody.cfg.lua); it ends in
-- the MUC component's section, which the test's lines extend.
%[8]s
	restrict_room_creation = false
%[9]s
%[11]s
`, filepath.Join(s.Dir, "prosody.pid"), filepath.Join(s.Dir, "data"), level, c2s, comp,
		c.Global, s.Domain, snippet, c.MUCExtra, filepath.Join(s.Dir, "certs"), c.Extra, httpPorts)
}

// luaStrings is a list of Lua string literals.
func luaStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (s *XMPPServer) waitComponentPort(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.ComponentAddr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: component port %s not listening: %v", s.Software, s.ComponentAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Register creates a user account.
func (s *XMPPServer) Register(t testing.TB, user, password string) {
	t.Helper()
	s.register(t, user, password)
}

// Restart stops the server and starts it again on the same ports; every
// session is closed and non-persistent rooms are gone.
func (s *XMPPServer) Restart(t testing.TB) {
	t.Helper()
	s.Process.Restart()
	s.waitComponentPort(t)
}

// JID is user@Domain.
func (s *XMPPServer) JID(user string) jid.JID { return jid.MustParse(user + "@" + s.Domain) }

// Room is name@MUC.
func (s *XMPPServer) Room(name string) jid.JID { return jid.MustParse(name + "@" + s.MUC) }

// listensOnlyOnPorts checks that a process's listening TCP sockets are
// all on 127.0.0.1 and among ports, so that a config mistake cannot
// expose a test server.
func listensOnlyOnPorts(pid int, ports ...int) error {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil // no procfs: nothing to check with
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	want := map[string]bool{}
	for _, p := range ports {
		want[fmt.Sprintf("0100007F:%04X", p)] = true
	}
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			if !want[f[1]] {
				return fmt.Errorf("listens on %s (%s), want only 127.0.0.1 ports %v", f[1], table, ports)
			}
		}
	}
	return nil
}

// XMLElement is a parsed XML element: what a test inspects of a stanza.
type XMLElement struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*XMLElement
	// Text is the element's own character data, concatenated.
	Text string
}

// AttrValue is the value of the attribute with this local name, or "".
func (e *XMLElement) AttrValue(local string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Child is the first child element with this namespace ("" for any) and
// local name, or nil.
func (e *XMLElement) Child(space, local string) *XMLElement {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// TextOrEmpty is e's text, or "" for a nil element.
func (e *XMLElement) TextOrEmpty() string {
	if e == nil {
		return ""
	}
	return e.Text
}

// ChildrenNamed lists the child elements with this namespace ("" for
// any) and local name.
func (e *XMLElement) ChildrenNamed(space, local string) []*XMLElement {
	if e == nil {
		return nil
	}
	var out []*XMLElement
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			out = append(out, c)
		}
	}
	return out
}

func readXMLElement(r xml.TokenReader, start xml.StartElement, raw *xml.Encoder) (*XMLElement, error) {
	el := &XMLElement{Name: start.Name, Attr: start.Attr}
	if raw != nil {
		raw.EncodeToken(withoutXMLNS(start))
	}
	for {
		tok, err := r.Token()
		if err != nil {
			return el, err
		}
		if _, isStart := tok.(xml.StartElement); raw != nil && !isStart {
			raw.EncodeToken(xml.CopyToken(tok))
		}
		switch tt := tok.(type) {
		case xml.StartElement:
			child, err := readXMLElement(r, tt.Copy(), raw)
			el.Children = append(el.Children, child)
			if err != nil {
				return el, err
			}
		case xml.CharData:
			el.Text += string(tt)
		case xml.EndElement:
			return el, nil
		}
	}
}

// withoutXMLNS drops namespace declarations, which the encoder writes
// again from the element's name.
func withoutXMLNS(start xml.StartElement) xml.StartElement {
	out := xml.StartElement{Name: start.Name}
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		out.Attr = append(out.Attr, a)
	}
	return out
}

// ParseXML parses one element from text.
func ParseXML(text string) (*XMLElement, error) {
	d := xml.NewDecoder(strings.NewReader(text))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return readXMLElement(d, start.Copy(), nil)
		}
	}
}

// XMPPStanza is one stanza a test client received.
type XMPPStanza struct {
	Time time.Time
	// Raw is the stanza as XML (re-encoded from the parsed tokens, so the
	// namespaces are spelled out).
	Raw string
	*XMLElement
}

// Kind is "message", "presence" or "iq".
func (s XMPPStanza) Kind() string { return s.Name.Local }

// Type, ID, From and To are the stanza's attributes.
func (s XMPPStanza) Type() string { return s.AttrValue("type") }
func (s XMPPStanza) ID() string   { return s.AttrValue("id") }
func (s XMPPStanza) From() string { return s.AttrValue("from") }
func (s XMPPStanza) To() string   { return s.AttrValue("to") }

// Body is the text of a message's body.
func (s XMPPStanza) Body() string { return s.Child("", "body").TextOrEmpty() }

// Nick is the resource of From: a MUC occupant's nick.
func (s XMPPStanza) Nick() string {
	_, nick, _ := strings.Cut(s.From(), "/")
	return nick
}

// StanzaID is the id of the stanza-id (XEP-0359) set by by, or "".
func (s XMPPStanza) StanzaID(by string) string {
	for _, c := range s.ChildrenNamed("urn:xmpp:sid:0", "stanza-id") {
		if c.AttrValue("by") == by {
			return c.AttrValue("id")
		}
	}
	return ""
}

// MUCStatus reports whether a presence carries the MUC status code.
func (s XMPPStanza) MUCStatus(code int) bool {
	x := s.Child("http://jabber.org/protocol/muc#user", "x")
	for _, st := range x.ChildrenNamed("", "status") {
		if st.AttrValue("code") == strconv.Itoa(code) {
			return true
		}
	}
	return false
}

// XMPPClient is an ordinary XMPP user for tests: it logs in (SASL PLAIN
// over the plain loopback connection), records every stanza it receives
// and lets the test wait for the ones it expects.
type XMPPClient struct {
	t       testing.TB
	JID     jid.JID // the full JID the server bound
	Session *xmpp.Session

	stanzas received[XMPPStanza]
	done    chan struct{}
	mu      sync.Mutex // guards err
	err     error
}

var xmppClientSeq atomic.Uint64

// Client logs in as user, who must be registered (XMPPServerConfig.Users
// or Register). It is disconnected when the test ends.
func (s *XMPPServer) Client(t testing.TB, user, password string) *XMPPClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.C2SAddr)
	if err != nil {
		t.Fatalf("xmpp client %s: %v", user, err)
	}
	origin := s.JID(user)
	features := []xmpp.StreamFeature{xmpp.SASL("", password, sasl.Plain), xmpp.BindResource()}
	// Not ctx: mellium's watcher of a context that ends right after
	// negotiation can fail the first writes (see xmpp.Adapter.connect).
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	// Secure tells mellium the stream may carry a password: it is a
	// loopback test connection.
	sess, err := xmpp.NewSession(context.Background(), origin.Domain(), origin, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		conn.Close()
		t.Fatalf("xmpp client %s: login: %v", user, err)
	}
	conn.SetDeadline(time.Time{})
	c := &XMPPClient{t: t, JID: sess.LocalAddr(), Session: sess, done: make(chan struct{})}
	go func() {
		err := sess.Serve(xmpp.HandlerFunc(c.handle))
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		conn.Close()
		close(c.done)
	}()
	t.Cleanup(c.Close)
	// Available, as a client is after login: messages to the bare JID
	// reach only available resources.
	if err := c.SendRaw("<presence/>"); err != nil {
		t.Fatalf("xmpp client %s: initial presence: %v", user, err)
	}
	return c
}

func (c *XMPPClient) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var raw bytes.Buffer
	enc := xml.NewEncoder(&raw)
	el, err := readXMLElement(r, start.Copy(), enc)
	enc.Flush()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	c.stanzas.add(XMPPStanza{Time: time.Now(), Raw: raw.String(), XMLElement: el})
	return nil
}

// Close ends the session and waits (up to 5s) for the connection to close.
func (c *XMPPClient) Close() {
	c.Session.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.Session.Conn().Close()
		<-c.done
	}
}

// Connected reports whether the session is still up.
func (c *XMPPClient) Connected() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// NewID returns a fresh stanza id.
func (c *XMPPClient) NewID() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), xmppClientSeq.Add(1))
}

// SendRaw sends XML text (one stanza, namespaces as a client writes them:
// the stanza itself in no namespace).
func (c *XMPPClient) SendRaw(text string) error {
	// A deadline on the connection, not on a context: mellium's watcher
	// of a context that ends after Send returned can fail the next write
	// (see sendBounded in the xmpp package).
	if err := c.Session.Conn().SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	return c.Session.Send(context.Background(), xml.NewDecoder(strings.NewReader(text)))
}

// Send sends a stanza of kind ("message", "presence", "iq") with the
// given attributes (name, value pairs; "" values are left out), text for
// a body (message only, "" for none) and extra child elements as XML
// text. It returns the stanza's id.
func (c *XMPPClient) Send(kind string, attrs []string, body string, extra ...string) (string, error) {
	id := ""
	var b strings.Builder
	b.WriteString("<" + kind)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i] == "id" {
			id = attrs[i+1]
		}
		if attrs[i+1] != "" {
			b.WriteString(" " + attrs[i] + `="` + xmlEscape(attrs[i+1]) + `"`)
		}
	}
	if id == "" {
		id = c.NewID()
		b.WriteString(` id="` + id + `"`)
	}
	b.WriteString(">")
	if body != "" {
		b.WriteString("<body>" + xmlEscape(body) + "</body>")
	}
	for _, x := range extra {
		b.WriteString(x)
	}
	b.WriteString("</" + kind + ">")
	return id, c.SendRaw(b.String())
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Join enters a MUC room with a nick (asking for no history) and waits for
// the room's self-presence.
func (c *XMPPClient) Join(room jid.JID, nick string) error {
	return c.JoinWith(room, nick, `<x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x>`)
}

// JoinWith is Join with a custom <x/> payload (history settings, password).
func (c *XMPPClient) JoinWith(room jid.JID, nick, x string) error {
	from := c.Len()
	occupant := room.Bare().String() + "/" + nick
	if _, err := c.Send("presence", []string{"to", occupant}, "", x); err != nil {
		return err
	}
	st, err := c.WaitFrom(from, 20*time.Second, func(s XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == occupant && (s.Type() == "error" || s.MUCStatus(110))
	})
	if err != nil {
		return fmt.Errorf("join %s: %w", occupant, err)
	}
	if st.Type() == "error" {
		return fmt.Errorf("join %s: %s", occupant, st.Raw)
	}
	return nil
}

// Leave leaves a MUC room.
func (c *XMPPClient) Leave(room jid.JID, nick string) error {
	_, err := c.Send("presence", []string{"to", room.Bare().String() + "/" + nick, "type", "unavailable"}, "")
	return err
}

// Say sends a groupchat message to a room with optional extra child
// elements (corrections, replies, reactions, ...) and returns its id.
func (c *XMPPClient) Say(room jid.JID, body string, extra ...string) (string, error) {
	return c.Send("message", []string{"to", room.Bare().String(), "type", "groupchat"}, body, extra...)
}

// Chat sends a one-to-one chat message and returns its id.
func (c *XMPPClient) Chat(to jid.JID, body string, extra ...string) (string, error) {
	return c.Send("message", []string{"to", to.String(), "type", "chat"}, body, extra...)
}

// IQ sends an IQ of type typ ("get" or "set") with payload (XML text) and
// waits for its answer.
func (c *XMPPClient) IQ(to jid.JID, typ, payload string) (XMPPStanza, error) {
	from := c.Len()
	id, err := c.Send("iq", []string{"to", to.String(), "type", typ}, "", payload)
	if err != nil {
		return XMPPStanza{}, err
	}
	return c.WaitFrom(from, 20*time.Second, func(s XMPPStanza) bool {
		return s.Kind() == "iq" && s.ID() == id && (s.Type() == "result" || s.Type() == "error")
	})
}

// Len is the number of stanzas received so far; pass it to WaitFrom to
// wait only for stanzas that arrive after this moment.
func (c *XMPPClient) Len() int { return c.stanzas.count() }

// Stanzas returns a copy of every stanza received so far.
func (c *XMPPClient) Stanzas() []XMPPStanza {
	return c.stanzas.all()
}

// WaitFor returns the first stanza ever received that matches, waiting up
// to timeout for it to arrive.
func (c *XMPPClient) WaitFor(timeout time.Duration, match func(XMPPStanza) bool) (XMPPStanza, error) {
	return c.WaitFrom(0, timeout, match)
}

// WaitFrom is WaitFor looking only at stanzas from index from on.
func (c *XMPPClient) WaitFrom(from int, timeout time.Duration, match func(XMPPStanza) bool) (XMPPStanza, error) {
	_, s, err := c.WaitIndex(from, timeout, match)
	return s, err
}

// WaitIndex is WaitFrom that also returns the stanza's index, to read a
// sequence of stanzas in order.
func (c *XMPPClient) WaitIndex(from int, timeout time.Duration, match func(XMPPStanza) bool) (int, XMPPStanza, error) {
	i, s, err := c.stanzas.waitIndex(from, timeout, c.done, match)
	switch {
	case errors.Is(err, errWaitGone):
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		return i, s, fmt.Errorf("xmpp client %s: disconnected (%v) before a matching stanza", c.JID, err)
	case err != nil:
		return i, s, fmt.Errorf("no matching stanza after %v; received:\n%s", timeout, c.dump())
	}
	return i, s, nil
}

// WaitMessage waits for a message that matches, failing the test after
// timeout.
func (c *XMPPClient) WaitMessage(timeout time.Duration, match func(XMPPStanza) bool) XMPPStanza {
	c.t.Helper()
	s, err := c.WaitFor(timeout, func(s XMPPStanza) bool { return s.Kind() == "message" && match(s) })
	if err != nil {
		c.t.Fatalf("xmpp client %s: waiting for a message: %v", c.JID, err)
	}
	return s
}

func (c *XMPPClient) dump() string {
	var b strings.Builder
	ss := c.Stanzas()
	if len(ss) > 40 {
		fmt.Fprintf(&b, "… %d earlier stanzas\n", len(ss)-40)
		ss = ss[len(ss)-40:]
	}
	for _, s := range ss {
		b.WriteString(s.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}
