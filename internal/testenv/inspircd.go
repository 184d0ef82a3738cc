package testenv

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"
)

// IRCServer is an InspIRCd started for a test.
type IRCServer struct {
	// Addr is the client port, "127.0.0.1:PORT".
	Addr string
	// Name is the server name, the source of its numerics.
	Name string
	// Process lets a test stop, kill or restart the server.
	Process *Process
	// Dir holds the generated config, pid and log files.
	Dir string
	// LinkPort is the servers port services link to (0 without
	// IRCServerConfig.Services).
	LinkPort int
}

// IRCServerConfig tunes the generated InspIRCd config. The zero value is
// what InspIRCd(t) uses.
type IRCServerConfig struct {
	// MaxClients is the number of connections the server accepts from
	// loopback addresses (default 5000).
	MaxClients int
	// CaseMapping is "rfc1459" (the default) or "ascii".
	CaseMapping string
	// Extra is appended to the config verbatim (more modules, channel
	// limits, ...).
	Extra string
	// Services, when set, is the name of a services server (Atheme) the
	// server lets link over a servers port of its own (IRCServer.LinkPort)
	// with LinkPassword; it is U-lined and the SASL agent.
	Services     string
	LinkPassword string

	// edit changes the guide's connect class before use (a test of the
	// class itself takes a line out).
	edit func(class string) string
}

// ircv3Modules are the modules that give clients the IRCv3 capabilities
// the adapter and the tests rely on.
var ircv3Modules = []string{
	"cap", "ircv3", "ircv3_echomessage", "ircv3_msgid", "ircv3_servertime",
	"ircv3_ctctags", "ircv3_labeledresponse", "ircv3_batch", "ircv3_accounttag",
	"ircv3_capnotify", "ircv3_chghost", "namesx", "uhnames", "services_account",
}

// InspIRCd starts Debian's InspIRCd 3 on a free loopback port with the
// IRCv3 modules loaded and flood protection off, and stops it when the test
// ends.
func InspIRCd(t testing.TB) *IRCServer { return InspIRCdWith(t, IRCServerConfig{}) }

// InspIRCdWith is InspIRCd with a tuned config.
func InspIRCdWith(t testing.TB, c IRCServerConfig) *IRCServer {
	t.Helper()
	bin := Need(t, "/usr/sbin/inspircd")
	if c.MaxClients <= 0 {
		c.MaxClients = 5000
	}
	if c.CaseMapping == "" {
		c.CaseMapping = "rfc1459"
	}
	dir := t.TempDir()
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ports := []int{port}
	linkPort := 0
	if c.Services != "" {
		linkPort = FreePort(t)
		ports = append(ports, linkPort)
	}
	conf := inspircdConfig(t, dir, port, linkPort, c)
	path := WriteFile(t, dir, "inspircd.conf", conf)
	p := &Process{
		Name:  bin,
		Args:  []string{"--nofork", "--runasroot", "--config=" + path},
		Dir:   dir,
		Ready: addr,
	}
	p.Start(t)
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	if err := listensOnlyOn(pid, ports...); err != nil {
		t.Fatalf("inspircd: %v", err)
	}
	return &IRCServer{Addr: addr, Name: "irc.test", Process: p, Dir: dir, LinkPort: linkPort}
}

// listensOnlyOn checks that a process's only listening TCP sockets are
// on 127.0.0.1 at the given ports, so that a config mistake cannot
// expose a test server.
func listensOnlyOn(pid int, ports ...int) error {
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
	for _, port := range ports {
		want[fmt.Sprintf("0100007F:%04X", port)] = true
	}
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ... inode (field 9)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			if !want[f[1]] {
				return fmt.Errorf("listens on %s (%s), want only 127.0.0.1:%v", f[1], table, ports)
			}
		}
	}
	return nil
}

func inspircdConfig(t testing.TB, dir string, port, linkPort int, c IRCServerConfig) string {
	t.Helper()
	var b strings.Builder
	// Only one <bind>, on loopback: InspIRCd has no default listener, and
	// without spanningtree there is no server port either.
	fmt.Fprintf(&b, `<server name="irc.test" description="Switchboard test server" network="SwitchboardTest">
<admin name="test" nick="test" email="test@localhost">
<bind address="127.0.0.1" port="%d" type="clients">
<path configdir="%[2]s" datadir="%[2]s" logdir="%[2]s" moduledir="/usr/lib/inspircd/modules">
<pid file="%[2]s/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="%[2]s/ircd.log">
<dns server="127.0.0.1" timeout="1">
`, port, dir)
	// The setup guide's connect class (docs/snippets/inspircd.conf):
	// tests open hundreds of connections from one address and send
	// bursts, as Switchboard's puppets do. The limits are one higher
	// than MaxClients since InspIRCd counts the connection it is deciding
	// on. connectban and connflood are loaded with thresholds a test
	// passes at once, so that the class's exemption from them is what
	// every test's connections rely on.
	class := Snippet(t, "inspircd.conf", map[string]string{
		// Every loopback address: IRC source_address tests (and cluster
		// instances) connect from 127.0.0.2, 127.0.0.3...
		`allow="203.0.113.7"`:                        `allow="127.0.0.0/8"`,
		`localmax="120" globalmax="120" limit="120"`: fmt.Sprintf(`localmax="%[1]d" globalmax="%[1]d" limit="%[1]d"`, c.MaxClients+1),
	})
	if c.edit != nil {
		class = c.edit(class)
	}
	b.WriteString(class)
	fmt.Fprintf(&b, `<module name="connectban">
<connectban threshold="3" banduration="10m" bootwait="0" splitwait="0">
<module name="connflood">
<connflood period="30" maxconns="3" timeout="30" bootwait="0" quitmsg="Throttled">
<performance somaxconn="128" softlimit="%[1]d" netbuffersize="10240" quietbursts="yes" clonesonconnect="no">
<channels users="500" opers="500">
<options casemapping="%[2]s" prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes" exemptchanops="">
<security hideserver="" userstats="Pu" hidesplits="no" hidebans="no" maxtargets="20">
<limits maxnick="30" maxchan="60" maxident="10" maxhost="64" maxquit="300" maxtopic="330" maxkick="300" maxreal="130" maxaway="200">
<whowas groupsize="10" maxgroups="1000" maxkeep="1h">
`, c.MaxClients+100, c.CaseMapping)
	for _, m := range ircv3Modules {
		fmt.Fprintf(&b, "<module name=%q>\n", m)
	}
	// The catch-up guide's chanhistory (docs/irc.md, "Catch-up"): a
	// channel without +H plays nothing back.
	b.WriteString(Snippet(t, "inspircd-chanhistory.conf", nil))
	if c.Services != "" {
		// Services speak InspIRCd 2.0's link protocol (1202), which
		// spanningtree still accepts; the servers port is on loopback
		// too, and only the services server may link.
		fmt.Fprintf(&b, `<module name="spanningtree">
<module name="sasl">
<bind address="127.0.0.1" port="%[1]d" type="servers">
<link name=%[2]q ipaddr="127.0.0.1" port="%[1]d" allowmask="127.0.0.1/32" sendpass=%[3]q recvpass=%[3]q timeout="30">
<uline server=%[2]q silent="yes">
<sasl target=%[2]q requiressl="no">
`, linkPort, c.Services, c.LinkPassword)
	}
	b.WriteString(c.Extra)
	b.WriteString("\n")
	return b.String()
}

// Restart stops the server and starts it again on the same port; every
// client is disconnected.
func (s *IRCServer) Restart() { s.Process.Restart() }

// IRCLine is one line a test client received.
type IRCLine struct {
	Time time.Time
	Raw  string
	ircmsg.Message
}

// Text is the line's last parameter (a message's text).
func (l IRCLine) Text() string {
	if len(l.Params) == 0 {
		return ""
	}
	return l.Params[len(l.Params)-1]
}

// Target is the line's first parameter (a message's channel or nick).
func (l IRCLine) Target() string {
	if len(l.Params) == 0 {
		return ""
	}
	return l.Params[0]
}

// IRCClientConfig says how a test client connects.
type IRCClientConfig struct {
	Nick string
	User string // default: Nick
	// Caps are the IRCv3 capabilities to request; nil means DefaultCaps.
	// batch is best left out: the client would hold batched lines back.
	Caps []string
	// Debug logs the raw traffic to the test log.
	Debug bool
	// SASLUser and SASLPassword log in with SASL PLAIN during
	// registration (the server must offer it, see Atheme); a refused
	// login fails the test.
	SASLUser, SASLPassword string
}

// DefaultCaps are the capabilities test clients request by default.
var DefaultCaps = []string{"message-tags", "server-time", "account-tag", "multi-prefix", "userhost-in-names"}

// IRCClient is a plain IRC user for tests: it records every line it
// receives and lets the test wait for the ones it expects.
type IRCClient struct {
	t    testing.TB
	Conn *ircevent.Connection

	lines received[IRCLine]
	done  chan struct{} // closed when the connection is gone for good
}

// Client connects a test user with the default capabilities; it quits
// when the test ends.
func (s *IRCServer) Client(t testing.TB, nick string) *IRCClient {
	t.Helper()
	return s.ClientWith(t, IRCClientConfig{Nick: nick})
}

// ClientWith connects a test user. The client does not reconnect: once
// the server drops it, it stays gone.
func (s *IRCServer) ClientWith(t testing.TB, cfg IRCClientConfig) *IRCClient {
	t.Helper()
	c, err := s.connectClient(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// connectClient is ClientWith returning a failed connection's error.
func (s *IRCServer) connectClient(t testing.TB, cfg IRCClientConfig) (*IRCClient, error) {
	caps := cfg.Caps
	if caps == nil {
		caps = DefaultCaps
	}
	c := &IRCClient{t: t, done: make(chan struct{})}
	var logger *log.Logger
	if cfg.Debug {
		logger = log.New(testWriter{t}, cfg.Nick+" ", 0)
	} else {
		logger = log.New(io.Discard, "", 0)
	}
	conn := &ircevent.Connection{
		Server:      s.Addr,
		Nick:        cfg.Nick,
		User:        cfg.User,
		RealName:    "test user " + cfg.Nick,
		RequestCaps: append([]string(nil), caps...),
		Timeout:     20 * time.Second,
		KeepAlive:   4 * time.Minute,
		Debug:       cfg.Debug,
		Log:         logger,
		QuitMessage: "test over",
	}
	if cfg.SASLUser != "" {
		conn.UseSASL = true
		conn.SASLLogin, conn.SASLPassword = cfg.SASLUser, cfg.SASLPassword
	}
	c.Conn = conn
	conn.AddRawCallback(func(raw string, m ircmsg.Message, err error) {
		if err != nil {
			return
		}
		c.lines.add(IRCLine{Time: time.Now(), Raw: raw, Message: m})
	})
	// Quit from the disconnect callback makes Loop return instead of
	// reconnecting: a test user that silently came back would hide bugs.
	conn.AddDisconnectCallback(func(ircmsg.Message) { conn.Quit() })
	if err := conn.Connect(); err != nil {
		return nil, fmt.Errorf("irc client %s: connect %s: %w", cfg.Nick, s.Addr, err)
	}
	go func() {
		conn.Loop()
		close(c.done)
	}()
	t.Cleanup(c.Quit)
	return c, nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Nick is the client's current nick.
func (c *IRCClient) Nick() string { return c.Conn.CurrentNick() }

// Connected reports whether the client is still connected.
func (c *IRCClient) Connected() bool {
	select {
	case <-c.done:
		return false
	default:
		return c.Conn.Connected()
	}
}

// Quit disconnects and waits (up to 5s) until the connection is closed.
func (c *IRCClient) Quit() {
	c.Conn.Quit()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// Send sends a command; parameters must not contain CR, LF or NUL.
func (c *IRCClient) Send(command string, params ...string) {
	c.t.Helper()
	if err := c.Conn.Send(command, params...); err != nil {
		c.t.Fatalf("irc client %s: send %s: %v", c.Nick(), command, err)
	}
}

// Join joins a channel and waits until the server confirms it.
func (c *IRCClient) Join(channel string) {
	c.t.Helper()
	from := c.Len()
	c.Send("JOIN", channel)
	nick := c.Nick()
	if _, err := c.WaitFrom(from, 10*time.Second, func(l IRCLine) bool {
		return l.Command == "JOIN" && strings.EqualFold(l.Nick(), nick) && strings.EqualFold(l.Target(), channel)
	}); err != nil {
		c.t.Fatalf("irc client %s: join %s: %v", nick, channel, err)
	}
}

// Part leaves a channel.
func (c *IRCClient) Part(channel, reason string) { c.t.Helper(); c.Send("PART", channel, reason) }

// Say sends a PRIVMSG.
func (c *IRCClient) Say(target, text string) { c.t.Helper(); c.Send("PRIVMSG", target, text) }

// Action sends a CTCP ACTION (/me).
func (c *IRCClient) Action(target, text string) {
	c.t.Helper()
	c.Send("PRIVMSG", target, "\x01ACTION "+text+"\x01")
}

// Notice sends a NOTICE.
func (c *IRCClient) Notice(target, text string) { c.t.Helper(); c.Send("NOTICE", target, text) }

// Topic sets a channel's topic.
func (c *IRCClient) Topic(channel, topic string) { c.t.Helper(); c.Send("TOPIC", channel, topic) }

// SetNick changes the client's nick.
func (c *IRCClient) SetNick(nick string) { c.Conn.SetNick(nick) }

// Names lists the nicks in channel, as NAMES answers now (without
// their rank prefixes or user@host), failing the test if it does not answer within
// timeout.
func (c *IRCClient) Names(timeout time.Duration, channel string) []string {
	c.t.Helper()
	from := c.Len()
	c.Send("NAMES", channel)
	end, _, err := c.WaitIndex(from, timeout, func(l IRCLine) bool { return l.Command == "366" })
	if err != nil {
		c.t.Fatalf("NAMES %s: %v", channel, err)
	}
	var nicks []string
	for _, l := range c.Lines()[from:end] {
		if l.Command == "353" && len(l.Params) >= 4 {
			for _, n := range strings.Fields(l.Params[3]) {
				nick, _, _ := strings.Cut(strings.TrimLeft(n, "~&@%+"), "!") // userhost-in-names
				nicks = append(nicks, nick)
			}
		}
	}
	return nicks
}

// Len is the number of lines received so far; pass it to WaitFrom to wait
// only for lines that arrive after this moment.
func (c *IRCClient) Len() int { return c.lines.count() }

// Lines returns a copy of every line received so far.
func (c *IRCClient) Lines() []IRCLine { return c.lines.all() }

// Wait returns the first line ever received that matches, waiting up to
// timeout for it to arrive.
func (c *IRCClient) Wait(timeout time.Duration, match func(IRCLine) bool) (IRCLine, error) {
	return c.WaitFrom(0, timeout, match)
}

// WaitFrom is Wait looking only at lines from index from on.
func (c *IRCClient) WaitFrom(from int, timeout time.Duration, match func(IRCLine) bool) (IRCLine, error) {
	_, l, err := c.WaitIndex(from, timeout, match)
	return l, err
}

// WaitIndex is WaitFrom that also returns the line's index: WaitIndex(i+1,
// ...) continues after it, to read a sequence of lines in order.
func (c *IRCClient) WaitIndex(from int, timeout time.Duration, match func(IRCLine) bool) (int, IRCLine, error) {
	i, l, err := c.lines.waitIndex(from, timeout, nil, match)
	if err != nil {
		return i, l, fmt.Errorf("no matching line after %v", timeout)
	}
	return i, l, nil
}

// Messages returns the PRIVMSGs and NOTICEs received so far that match
// (nil matches all).
func (c *IRCClient) Messages(match func(IRCLine) bool) []IRCLine {
	var out []IRCLine
	for _, l := range c.Lines() {
		if (l.Command == "PRIVMSG" || l.Command == "NOTICE") && (match == nil || match(l)) {
			out = append(out, l)
		}
	}
	return out
}

// WaitMessage waits for a PRIVMSG or NOTICE that matches, failing the test
// after timeout.
func (c *IRCClient) WaitMessage(timeout time.Duration, match func(IRCLine) bool) IRCLine {
	c.t.Helper()
	l, err := c.Wait(timeout, func(l IRCLine) bool {
		return (l.Command == "PRIVMSG" || l.Command == "NOTICE") && match(l)
	})
	if err != nil {
		c.t.Fatalf("irc client %s: waiting for a message: %v; received:\n%s", c.Nick(), err, c.dump())
	}
	return l
}

// WaitText waits for a PRIVMSG or NOTICE with exactly this text in target
// from nick ("" for any sender).
func (c *IRCClient) WaitText(timeout time.Duration, target, nick, text string) IRCLine {
	c.t.Helper()
	return c.WaitMessage(timeout, func(l IRCLine) bool {
		return strings.EqualFold(l.Target(), target) && l.Text() == text &&
			(nick == "" || strings.EqualFold(l.Nick(), nick))
	})
}

func (c *IRCClient) dump() string {
	var b strings.Builder
	lines := c.Lines()
	if len(lines) > 60 {
		fmt.Fprintf(&b, "… %d earlier lines\n", len(lines)-60)
		lines = lines[len(lines)-60:]
	}
	for _, l := range lines {
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// LogFile returns the server's log so far, for debugging a test.
func (s *IRCServer) LogFile() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "ircd.log"))
	return string(b)
}
