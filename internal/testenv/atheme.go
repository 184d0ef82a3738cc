package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ServicesName is the server name the test Atheme links as.
const ServicesName = "services.localhost"

// Services is an InspIRCd linked with Atheme services (NickServ and
// SaslServ), for tests of accounts and SASL logins.
type Services struct {
	// IRC is the InspIRCd clients connect to.
	IRC *IRCServer
	// Dir holds Atheme's config, database, log and pid file.
	Dir string

	pidFile string
}

// Atheme starts a test InspIRCd and Debian's atheme-services linked to it,
// each with its own temp dir, and waits until the services are on the
// network. Both stop when the test ends.
func Atheme(t testing.TB) *Services { return AthemeWith(t, IRCServerConfig{}) }

// AthemeWith is Atheme with a tuned InspIRCd config; its Services and
// LinkPassword are set here.
func AthemeWith(t testing.TB, c IRCServerConfig) *Services {
	t.Helper()
	bin := Need(t, "/usr/bin/atheme-services")
	c.Services, c.LinkPassword = ServicesName, "link-secret"
	irc := InspIRCdWith(t, c)
	// Its own dir per test: services.db keeps accounts between runs.
	dir := t.TempDir()
	s := &Services{IRC: irc, Dir: dir, pidFile: filepath.Join(dir, "atheme.pid")}
	conf := WriteFile(t, dir, "atheme.conf", athemeConfig(irc, c.LinkPassword))
	// Atheme forks into the background (-n would keep it in front, but
	// in a debug mode that notices every user), so it is stopped through
	// its pid file, not as our child.
	p := &Process{
		Name: bin,
		Args: []string{"-c", conf, "-D", dir, "-l", filepath.Join(dir, "atheme.log"), "-p", s.pidFile},
		Dir:  dir,
	}
	p.Start(t)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "atheme.log"))
			t.Logf("atheme log:\n%s", tail(string(b), 4000))
		}
	})
	s.waitLinked(t)
	return s
}

// athemeConfig is the smallest Atheme config with NickServ accounts and
// SASL PLAIN, linked to irc.
func athemeConfig(irc *IRCServer, password string) string {
	var b strings.Builder
	for _, m := range []string{
		"protocol/inspircd", "backend/opensex", "crypto/pbkdf2v2",
		"nickserv/main", "nickserv/register", "nickserv/identify", "nickserv/info",
		"saslserv/main", "saslserv/plain",
	} {
		fmt.Fprintf(&b, "loadmodule \"modules/%s\";\n", m)
	}
	fmt.Fprintf(&b, `serverinfo {
	name = %[1]q;
	desc = "Switchboard test services";
	numeric = "00A";
	recontime = 1;
	netname = "SwitchboardTest";
	hidehostsuffix = "users.test";
	adminname = "test";
	adminemail = "test@example.com";
	registeremail = "noreply@example.com";
	auth = none;
	maxlogins = 5;
	maxusers = 5;
	mdlimit = 30;
	emaillimit = 10;
	emailtime = 300;
	casemapping = rfc1459;
	loglevel = { error; info; admin; network; };
};
uplink %[2]q {
	host = "127.0.0.1";
	port = %[3]d;
	send_password = %[4]q;
	receive_password = %[4]q;
};
nickserv {
	nick = "NickServ";
	user = "NickServ";
	host = %[1]q;
	real = "Nickname Services";
	maxnicks = 5;
	expire = 0;
};
saslserv {
	nick = "SaslServ";
	user = "SaslServ";
	host = %[1]q;
	real = "SASL Authentication Agent";
};
general {
	flood_msgs = 0;
	flood_time = 10;
	ratelimit_uses = 0;
	ratelimit_period = 0;
	commit_interval = 5;
	default_clone_allowed = 5000;
	default_clone_warn = 5000;
	language = "en";
};
`, ServicesName, irc.Name, irc.LinkPort, password)
	return b.String()
}

// waitLinked waits until NickServ is on the network: the services have
// linked and sent their burst, SaslServ included.
func (s *Services) waitLinked(t testing.TB) {
	t.Helper()
	c := s.IRC.ClientWith(t, IRCClientConfig{Nick: "linkcheck"})
	defer c.Quit()
	deadline := time.Now().Add(30 * time.Second)
	for {
		from := c.Len()
		c.Send("WHOIS", "NickServ")
		l, err := c.WaitFrom(from, 2*time.Second, func(l IRCLine) bool {
			return l.Command == "311" || l.Command == "401"
		})
		if err == nil && l.Command == "311" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("atheme did not link to %s in 30s", s.IRC.Addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the daemon through its pid file and waits until it is gone.
func (s *Services) stop() {
	b, err := os.ReadFile(s.pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// RegisterAccount registers an account named nick with password through
// NickServ, as a client using that nick would, and quits. The password is
// one word: NickServ reads what follows a space as the e-mail address.
func (s *Services) RegisterAccount(t testing.TB, nick, password string) {
	t.Helper()
	if err := s.register(t, nick, password); err != nil {
		t.Fatal(err)
	}
}

// RegisterAccounts registers many accounts (nick to password), a few at
// a time.
func (s *Services) RegisterAccounts(t testing.TB, accounts map[string]string) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(accounts))
	for nick, password := range accounts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- s.register(t, nick, password)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (s *Services) register(t testing.TB, nick, password string) error {
	if strings.ContainsAny(password, " \r\n") {
		return fmt.Errorf("register %s: a NickServ password has no space or line break", nick)
	}
	c, err := s.IRC.connectClient(t, IRCClientConfig{Nick: nick})
	if err != nil {
		return err
	}
	defer c.Quit()
	if got := c.Nick(); got != nick {
		return fmt.Errorf("register %s: connected as %s", nick, got)
	}
	// NickServ refuses addresses it thinks invalid, such as a@b.c.
	if err := c.Conn.Send("PRIVMSG", "NickServ", "REGISTER "+password+" "+nick+"@example.com"); err != nil {
		return fmt.Errorf("register %s: %w", nick, err)
	}
	l, err := c.Wait(30*time.Second, func(l IRCLine) bool {
		return strings.EqualFold(l.Nick(), "NickServ") && l.Command == "NOTICE"
	})
	if err != nil {
		return fmt.Errorf("register %s: NickServ did not answer: %w", nick, err)
	}
	if !strings.Contains(l.Text(), "registered") || strings.Contains(l.Text(), "already") {
		return fmt.Errorf("register %s: NickServ said %q", nick, l.Text())
	}
	return nil
}

// Login connects a client that logs in to account with SASL PLAIN, under
// nick.
func (s *Services) Login(t testing.TB, nick, account, password string) *IRCClient {
	t.Helper()
	return s.IRC.ClientWith(t, IRCClientConfig{Nick: nick, SASLUser: account, SASLPassword: password})
}
