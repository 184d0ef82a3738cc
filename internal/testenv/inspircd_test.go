package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestInspIRCdGuideClassLetsPuppetsIn: the guide's connect class
// (docs/snippets/inspircd.conf) lets one address open as many
// connections as Switchboard's puppets need, at once, on a server that
// loads connectban and connflood; without its exemption lines the same
// connections are throttled, so the lines are what lets them in.
func TestInspIRCdGuideClassLetsPuppetsIn(t *testing.T) {
	t.Parallel()
	const n = 12
	srv := InspIRCdWith(t, IRCServerConfig{MaxClients: n})
	for i := range n {
		if line := register(t, srv.Addr, fmt.Sprintf("puppet%d", i)); !strings.Contains(line, " 001 ") {
			t.Fatalf("connection %d of %d: %q, want a welcome", i+1, n, line)
		}
	}

	bare := InspIRCdWith(t, IRCServerConfig{MaxClients: n, edit: func(class string) string {
		return strings.Replace(class, `useconnectban="no" useconnflood="no"`, "", 1)
	}})
	refused := ""
	for i := 0; i < n && refused == ""; i++ {
		if line := register(t, bare.Addr, fmt.Sprintf("puppet%d", i)); !strings.Contains(line, " 001 ") {
			refused = line
		}
	}
	if refused == "" {
		t.Fatalf("without the exemptions all %d connections were let in: the throttles the test loads are not on", n)
	}
	t.Logf("without the exemptions: %s", refused)
}

// register connects and registers a nick; it returns the welcome (001)
// or the ERROR line that ended the connection, which stays open until
// the test ends.
func register(t *testing.T, addr, nick string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "NICK %s\r\nUSER %s 0 * :test\r\n", nick, nick)
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "read: " + err.Error()
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "PING ") {
			fmt.Fprintf(conn, "PONG %s\r\n", line[5:])
			continue
		}
		if strings.Contains(line, " 001 ") || strings.HasPrefix(line, "ERROR") {
			return line
		}
	}
}
