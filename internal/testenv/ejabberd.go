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
	if c.Global != "" || c.MUCExtra != "" || len(c.MUCModules) > 0 || c.Extra != "" {
		t.Fatal("ejabberd: Global, MUCExtra, MUCModules and Extra are Prosody config")
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
	ports := []int{c2s, comp}
	var upload ejabberdUpload
	if c.FileShareLimit > 0 {
		upload = s.ejabberdUpload(t, c.FileShareLimit)
		ports = append(ports, upload.port)
	}
	s.Config = WriteFile(t, dir, "ejabberd.yml", ejabberdConfig(s.Domain, c2s, include, c.Debug, upload))
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
	if err := listensOnlyOnPorts(p.Pid(), ports...); err != nil {
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

// ejabberdUpload is the config of an HTTP upload service
// (mod_http_upload), or none when port is 0.
type ejabberdUpload struct {
	port                    int
	listen, acl, rules, mod string
}

// ejabberdUpload sets up the HTTP upload service FileShareLimit asks
// for, on a free loopback port; the component's JIDs may upload (the
// default access is local users only).
func (s *XMPPServer) ejabberdUpload(t testing.TB, limit int64) ejabberdUpload {
	t.Helper()
	port := FreePort(t)
	docroot := filepath.Join(s.Dir, "upload")
	if err := os.Mkdir(docroot, 0o750); err != nil {
		t.Fatal(err)
	}
	s.Upload = "upload." + s.Domain
	s.UploadURL = fmt.Sprintf("http://127.0.0.1:%d/upload", port)
	return ejabberdUpload{
		port: port,
		listen: fmt.Sprintf(`
  -
    port: %d
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /upload: mod_http_upload
`, port),
		acl: fmt.Sprintf(`
  uploaders:
    user_regexp: ""
    server: %q
`, s.Component),
		rules: `
  upload:
    allow: uploaders
`,
		mod: fmt.Sprintf(`
  mod_http_upload:
    host: %q
    docroot: %q
    put_url: %q
    max_size: %d
    access: upload
`, s.Upload, docroot, s.UploadURL, limit),
	}
}

// ejabberdConfig is the test's own part of the config: one host, a
// client port on loopback without TLS, accounts in Mnesia with open
// in-band registration (loopback only), and the guide's snippet
// included for the component and the MUC; an upload service if asked.
func ejabberdConfig(domain string, c2s int, include string, debug bool, up ejabberdUpload) string {
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
%[5]sacl:
  local:
    user_regexp: ""
%[6]saccess_rules:
  local:
    allow: uploaders
  register:
    allow: all
%[8]smodules:
  mod_disco: {}
  mod_ping: {}
  mod_register:
    ip_access: all
    access: register
  mod_roster: {}
  mod_vcard:
    search: false
%[7]sinclude_config_file: %[4]q
`, domain, level, c2s, include, up.listen, up.acl, up.mod, up.rules)
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
