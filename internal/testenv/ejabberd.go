package testenv

import (
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Ejabberd starts Debian's ejabberd (23.01) on free loopback ports and
// stops it when the test ends. It serves the same XMPPServer as Prosody
// (users on Domain, a MUC with MAM on MUC, an external component), so a
// test can run the same cases against both; the MUC and component parts
// of its config are docs/snippets/ejabberd.yml, the setup guide's.
//
// ejabberd runs as a plain Erlang VM of the test's user, without
// distribution: no node name, no epmd, no ejabberdctl (which re-runs
// itself as the ejabberd user and needs a node to talk to). Users are
// registered in-band (XEP-0077) over the client port.
func Ejabberd(t testing.TB) *XMPPServer { return EjabberdWith(t, XMPPServerConfig{}) }

// EjabberdWith is Ejabberd with a tuned config: Users and Debug apply;
// the Prosody-only fields (Global, MUCExtra, MUCModules) fail the test.
func EjabberdWith(t testing.TB, c XMPPServerConfig) *XMPPServer {
	t.Helper()
	if c.Global != "" || c.MUCExtra != "" || len(c.MUCModules) > 0 {
		t.Fatal("ejabberd: Global, MUCExtra and MUCModules are Prosody config")
	}
	erl := Need(t, "erl")
	libs := ejabberdLibs(t)
	s, c2s, comp := newXMPPServer(t, "ejabberd", "spool", "log")
	dir := s.Dir
	s.register = s.registerInBand
	snippet := Snippet(t, "ejabberd.yml", map[string]string{
		"bridge.example.org":         s.Component,
		"port: 5347":                 "port: " + strconv.Itoa(comp),
		"CHANGE-ME-component-secret": s.ComponentSecret,
		// Test rooms are persistent: ejabberd 23.01 drops a join that
		// reaches a temporary room while it is being destroyed (the
		// last occupant just left, as between two subtests), where a
		// bridged room always holds the bridge.
		"      mam: true\n": "      mam: true\n      persistent: true\n",
	})
	include := WriteFile(t, dir, "switchboard.yml", snippet)
	s.Config = WriteFile(t, dir, "ejabberd.yml", ejabberdConfig(s.Domain, c2s, include, c.Debug))
	p := &Process{
		Name: erl,
		// +sbwt none: schedulers do not spin when idle, on a machine
		// shared with other tests. The spool (Mnesia) persists across
		// Restart, as the accounts do on a real server.
		Args: []string{"-noinput", "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
			"-mnesia", "dir", strconv.Quote(filepath.Join(dir, "spool")), "-s", "ejabberd"},
		Dir: dir,
		Env: []string{
			"EJABBERD_CONFIG_PATH=" + s.Config,
			"EJABBERD_LOG_PATH=" + filepath.Join(dir, "log", "ejabberd.log"),
			"ERL_LIBS=" + libs,
			"ERL_CRASH_DUMP=" + filepath.Join(dir, "log", "erl_crash.dump"),
			"ERL_CRASH_DUMP_BYTES=0",
			"HOME=" + dir,
		},
		Ready: s.C2SAddr,
	}
	p.Start(t)
	s.Process = p
	s.waitComponentPort(t)
	if err := listensOnlyOnPorts(p.Pid(), c2s, comp); err != nil {
		t.Fatalf("ejabberd: %v", err)
	}
	for user, pass := range c.Users {
		s.Register(t, user, pass)
	}
	return s
}

// ejabberdLibs is the directory holding ejabberd's Erlang application
// (ERL_LIBS), as ejabberdctl sets it.
func ejabberdLibs(t testing.TB) string {
	t.Helper()
	for _, pattern := range []string{"/usr/lib/*/ejabberd-*/ebin/ejabberd.app", "/usr/lib/ejabberd-*/ebin/ejabberd.app", "/usr/local/lib/ejabberd-*/ebin/ejabberd.app"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return filepath.Dir(filepath.Dir(filepath.Dir(m[0])))
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ejabberd not installed (.ci/run should install it)")
	}
	t.Skip("ejabberd not installed")
	return ""
}

// ejabberdConfig is the test's own part of the config: one host, a
// client port on loopback without TLS, accounts in Mnesia with open
// in-band registration (loopback only), and the guide's snippet
// included for the component and the MUC.
func ejabberdConfig(domain string, c2s int, include string, debug bool) string {
	level := "info"
	if debug {
		level = "debug"
	}
	return fmt.Sprintf(`# Generated for a Switchboard test.
hosts:
  - %[1]q
loglevel: %[2]s
log_rotate_count: 0
auth_method: internal
auth_password_format: plain
# Tests register many accounts from one address.
registration_timeout: infinity
listen:
  -
    port: %[3]d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  register:
    allow: all
modules:
  mod_disco: {}
  mod_ping: {}
  mod_register:
    ip_access: all
    access: register
  mod_roster: {}
  mod_vcard:
    search: false
include_config_file: %[4]q
`, domain, level, c2s, include)
}

// registerInBand creates an account with in-band registration
// (XEP-0077) on a fresh client stream.
func (s *XMPPServer) registerInBand(t testing.TB, user, password string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: register %s: %s", s.Software, user, fmt.Sprintf(format, args...))
	}
	conn, err := net.DialTimeout("tcp", s.C2SAddr, 10*time.Second)
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(conn, `<?xml version='1.0'?><stream:stream to=%q xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`, s.Domain); err != nil {
		fail("%v", err)
	}
	d := xml.NewDecoder(conn)
	next := func() *XMLElement {
		t.Helper()
		for {
			tok, err := d.Token()
			if err != nil {
				fail("%v", err)
			}
			if start, ok := tok.(xml.StartElement); ok && start.Name.Local != "stream" {
				el, err := readXMLElement(d, start.Copy(), nil)
				if err != nil {
					fail("%v", err)
				}
				return el
			}
		}
	}
	if f := next(); f.Name.Local != "features" {
		fail("got <%s/>, want stream features", f.Name.Local)
	}
	if _, err := fmt.Fprintf(conn, `<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>%s</username><password>%s</password></query></iq>`,
		xmlEscape(user), xmlEscape(password)); err != nil {
		fail("%v", err)
	}
	if iq := next(); iq.Name.Local != "iq" || iq.AttrValue("type") != "result" {
		var conds []string
		if e := iq.Child("", "error"); e != nil {
			for _, c := range e.Children {
				conds = append(conds, c.Name.Local)
			}
		}
		fail("answer <%s type=%q> %v", iq.Name.Local, iq.AttrValue("type"), conds)
	}
	fmt.Fprint(conn, "</stream:stream>")
}

// XMPPServers are the XMPP servers tests run their shared cases
// against, by Software name.
var XMPPServers = []struct {
	Name  string
	Start func(testing.TB, XMPPServerConfig) *XMPPServer
}{{"prosody", ProsodyWith}, {"ejabberd", EjabberdWith}}
