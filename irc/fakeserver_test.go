package irc

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mapping"
)

// fakeServer is a scripted IRC server for what the local InspIRCd cannot
// show: TLS, server passwords and SASL.
type fakeServer struct {
	t         *testing.T
	ln        net.Listener
	offerSASL bool
	saslUser  string
	saslPass  string
	hangSASL  string          // a login the server never answers
	taken     map[string]bool // nicks in use
	afterJoin []string        // lines sent after each JOIN's echo
	offer     []string        // further caps offered
	isupport  string          // further ISUPPORT tokens
	// history answers a CHATHISTORY (its label and parameters) with the
	// lines to send.
	history func(label string, params []string) []string

	mu    sync.Mutex
	lines []string
}

func newFakeServer(t *testing.T, useTLS bool) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if useTLS {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	}
	s := &fakeServer{t: t, ln: ln, taken: map[string]bool{}}
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *fakeServer) start() {
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
}

func (s *fakeServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := func(format string, args ...any) { fmt.Fprintf(c, format+"\r\n", args...) }
	nick, capEnd, user := "", false, false
	offered := map[string]bool{"message-tags": true, "sasl": s.offerSASL}
	for _, c := range s.offer {
		offered[c] = true
	}
	welcome := func() {
		if nick == "" || !user || !capEnd {
			return
		}
		w(":fake 001 %s :Welcome", nick)
		w(":fake 005 %s NICKLEN=20 CASEMAPPING=ascii CHANTYPES=# %s:are supported", nick, s.isupport)
		w(":fake 376 %s :End of MOTD", nick)
	}
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.lines = append(s.lines, line)
		s.mu.Unlock()
		m, err := ircmsg.ParseLine(line)
		if err != nil {
			continue
		}
		p := func(i int) string {
			if i < len(m.Params) {
				return m.Params[i]
			}
			return ""
		}
		switch m.Command {
		case "CAP":
			switch p(0) {
			case "LS":
				var caps []string
				for c, ok := range offered {
					if ok {
						caps = append(caps, c)
					}
				}
				w(":fake CAP * LS :%s", strings.Join(caps, " "))
			case "REQ":
				if offered[p(1)] {
					w(":fake CAP * ACK :%s", p(1))
				} else {
					w(":fake CAP * NAK :%s", p(1))
				}
			case "END":
				capEnd = true
				welcome()
			}
		case "AUTHENTICATE":
			if p(0) == "PLAIN" {
				w("AUTHENTICATE +")
				continue
			}
			raw, _ := base64.StdEncoding.DecodeString(p(0))
			if f := bytes.Split(raw, []byte{0}); s.hangSASL != "" && len(f) == 3 && string(f[1]) == s.hangSASL {
				continue
			}
			if bytes.Equal(raw, []byte(s.saslUser+"\x00"+s.saslUser+"\x00"+s.saslPass)) {
				w(":fake 900 * * %s :You are now logged in", s.saslUser)
				w(":fake 903 * :SASL authentication successful")
			} else {
				w(":fake 904 * :SASL authentication failed")
			}
		case "NICK":
			if s.taken[p(0)] {
				w(":fake 433 * %s :Nickname is already in use", p(0))
				continue
			}
			nick = p(0)
			welcome()
		case "USER":
			user = true
			welcome()
		case "PING":
			w(":fake PONG fake :%s", p(0))
		case "JOIN":
			for _, ch := range strings.Split(p(0), ",") {
				w(":%s!u@fake.host JOIN %s", nick, ch)
			}
			for _, l := range s.afterJoin {
				w("%s", l)
			}
		case "CHATHISTORY":
			if s.history != nil {
				_, label := m.GetTag("label")
				for _, l := range s.history(label, m.Params) {
					w("%s", l)
				}
			}
		case "QUIT":
			w("ERROR :Closing link")
			return
		}
	}
}

// selfSigned is a certificate for the fake server's 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, _ := testenv.SelfSigned(t)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fakeNetwork(addr string, useTLS, skipVerify bool) *config.Network {
	return &config.Network{Type: "irc", Mode: "relay", Section: &Config{
		Server: addr, Nick: "bridge", TLS: useTLS, TLSInsecureSkipVerify: skipVerify,
		Password: "server-s3cret", SASL: &SASL{User: "botacct", Password: "hunter2"},
		Flood: Flood{Burst: 10, Interval: 10 * time.Millisecond}, ReconnectMax: 200 * time.Millisecond,
	}}
}

func startFake(t *testing.T, n *config.Network) (*Adapter, *recorder, *testenv.Log) {
	t.Helper()
	logs := testenv.NewLog(t)
	ad, err := New("fake", n, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	rec := newRecorder()
	if err := a.Join(t.Context(), "#lobby"); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Stop(t.Context())
		if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "hunter2") {
			t.Errorf("a password was logged:\n%s", logs.String())
		}
	})
	return a, rec, logs
}

func TestTLSPassSASL(t *testing.T) {
	srv := newFakeServer(t, true)
	srv.offerSASL, srv.saslUser, srv.saslPass = true, "botacct", "hunter2"
	srv.taken["bridge"] = true
	srv.start()
	a, rec, _ := startFake(t, fakeNetwork(srv.ln.Addr().String(), true, true))
	rec.until(t, "online", func() bool { return rec.onlineCount() > 0 })

	got := strings.Join(srv.received(), "\n")
	for _, want := range []string{"PASS server-s3cret", "AUTHENTICATE PLAIN", "CAP END", "JOIN #lobby"} {
		if !strings.Contains(got, want) {
			t.Errorf("server did not get %q:\n%s", want, got)
		}
	}
	// NICKLEN is unknown before registration: the first alternative is
	// made for 16 bytes.
	if nick := a.bot.nick(); nick != "bridge|"+mappingFingerprint("fake", "bridge") {
		t.Errorf("nick %q", nick)
	}
	if a.serverInfo().cm != caseASCII || a.serverInfo().nickLen != 20 {
		t.Errorf("ISUPPORT not read: %+v", a.serverInfo())
	}
}

// A server's notice in a channel is never bridged (services are, unless
// ignored by the router); a user's line after it is.
func TestServerNoticeNotBridged(t *testing.T) {
	srv := newFakeServer(t, false)
	srv.afterJoin = []string{
		":irc.fake.example NOTICE #lobby :*** server notice",
		":carol!c@fake.host PRIVMSG #lobby :after the notice",
	}
	srv.start()
	n := fakeNetwork(srv.ln.Addr().String(), false, false)
	n.Section.(*Config).SASL = nil
	_, rec, _ := startFake(t, n)
	rec.wait(t, "carol's line", func(ev bridge.Event) bool {
		m, ok := ev.(*bridge.Message)
		return ok && m.Text == "after the notice"
	})
	for _, ev := range rec.all() {
		if m, ok := ev.(*bridge.Message); ok && m.Text != "after the notice" {
			t.Errorf("bridged %q from %+v", m.Text, m.Sender)
		}
	}
}

func TestTLSVerifies(t *testing.T) {
	srv := newFakeServer(t, true)
	srv.start()
	a, rec, logs := startFake(t, fakeNetwork(srv.ln.Addr().String(), true, false))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(logs.String(), "certificate") {
		time.Sleep(20 * time.Millisecond)
	}
	if rec.onlineCount() != 0 || a.Connected() {
		t.Fatal("connected to a server with an untrusted certificate")
	}
	if !strings.Contains(logs.String(), "certificate") {
		t.Errorf("no certificate error logged:\n%s", logs.String())
	}
}

func TestSASLNotOffered(t *testing.T) {
	srv := newFakeServer(t, false)
	srv.start()
	_, rec, _ := startFake(t, fakeNetwork(srv.ln.Addr().String(), false, false))
	rec.until(t, "online without SASL", func() bool { return rec.onlineCount() > 0 })
	if got := strings.Join(srv.received(), "\n"); strings.Contains(got, "AUTHENTICATE") {
		t.Errorf("SASL attempted though not offered:\n%s", got)
	}
}

func TestSASLRefused(t *testing.T) {
	srv := newFakeServer(t, false)
	srv.offerSASL, srv.saslUser, srv.saslPass = true, "botacct", "other"
	srv.start()
	a, rec, logs := startFake(t, fakeNetwork(srv.ln.Addr().String(), false, false))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && strings.Count(strings.Join(srv.received(), "\n"), "AUTHENTICATE PLAIN") < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	if rec.onlineCount() != 0 || a.Connected() {
		t.Fatal("registered despite refused SASL")
	}
	if !strings.Contains(logs.String(), "SASL authentication failed") {
		t.Errorf("refusal not logged:\n%s", logs.String())
	}
	// It keeps trying, with backoff.
	if n := strings.Count(strings.Join(srv.received(), "\n"), "AUTHENTICATE PLAIN"); n < 2 {
		t.Errorf("%d attempts", n)
	}
}

func mappingFingerprint(network, id string) string {
	return mapping.Fingerprint(bridge.Sender{Network: network, ID: id})
}
