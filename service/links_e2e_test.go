package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// A second pair of rooms the tests link at runtime.
const (
	room2 = "#new"
	root2 = "sb/new"
)

func apiCall(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, out := testenv.HTTP(t, method, url, token, b)
	return resp.StatusCode, out
}

func linkNames(t *testing.T, base string) []string {
	t.Helper()
	code, body := apiCall(t, "GET", base+"/api/links", apiToken, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/links: %d %s", code, body)
	}
	var list struct{ Links []httpapi.Link }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list.Links {
		names = append(names, l.Name+"="+strings.Join(l.Rooms, ",")+"("+l.Source+")")
	}
	return names
}

func (w *world) publishTo(t *testing.T, root, device, payload string) {
	t.Helper()
	c := w.mqtt.Client(t, testenv.UniqueClientID(device))
	testenv.MQTTPublish(t, c, root+"/in/"+device, 1, false, payload)
}

// Issue 6, test 2: a link created through the API carries messages at
// once and after a restart; a wrong token and a bad room change nothing.
func TestAPILinkWorksAtOnceAndAfterRestart(t *testing.T) {
	w := newWorld(t)
	svc, stop := runService(t, w.config(t, "puppet"))
	base := "http://" + svc.HTTPAddr
	alice := w.irc.Client(t, "alice")
	alice.Join(room)
	alice.Join(room2)
	fresh := map[string]any{"name": "fresh", "rooms": []string{"libera:" + room2, "devices:" + root2}}

	if code, body := apiCall(t, "POST", base+"/api/links", "wrong-token-0123456789", fresh); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %s, want 401", code, body)
	}
	if code, _ := apiCall(t, "POST", base+"/api/links", "", fresh); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	bad := map[string]any{"name": "fresh", "rooms": []string{"libera:" + room2, "devices"}}
	code, body := apiCall(t, "POST", base+"/api/links", apiToken, bad)
	var apiErr httpapi.ErrorBody
	json.Unmarshal(body, &apiErr)
	if code != http.StatusBadRequest || len(apiErr.Fields) != 1 || apiErr.Fields[0].Field != "rooms[1]" ||
		!strings.Contains(apiErr.Error, "want network:room") {
		t.Fatalf("bad room: %d %s, want 400 naming rooms[1]", code, body)
	}
	if got := linkNames(t, base); len(got) != 1 || got[0] != "lobby=libera:#room,devices:sb/room(config)" {
		t.Fatalf("after refused requests the links are %q", got)
	}

	code, body = apiCall(t, "POST", base+"/api/links", apiToken, fresh)
	if code != http.StatusCreated || !strings.Contains(string(body), `"source": "runtime"`) {
		t.Fatalf("create: %d %s", code, body)
	}
	w.publishTo(t, root2, "sensor-2", "hello new")
	alice.WaitText(patience, room2, "sensor-2[devices]", "hello new")
	sub := w.mqtt.Subscribe(t, root2+"/out/#", 1)
	alice.Say(room2, "hi from irc")
	waitPayload(t, sub, `"text":"hi from irc"`)

	stop()
	svc, _ = runService(t, w.config(t, "puppet"))
	base = "http://" + svc.HTTPAddr
	if got := linkNames(t, base); len(got) != 2 || got[0] != "fresh=libera:#new,devices:sb/new(runtime)" {
		t.Fatalf("after a restart the links are %q", got)
	}
	w.publishTo(t, root2, "sensor-2", "after restart")
	alice.WaitText(patience, room2, "sensor-2[devices]", "after restart")

	// Taking the MQTT room out stops the flow; the file's link is untouched.
	code, body = apiCall(t, "DELETE", base+"/api/links/fresh/rooms/devices:"+root2, apiToken, nil)
	if code != http.StatusOK || strings.Contains(string(body), root2) {
		t.Fatalf("remove room: %d %s", code, body)
	}
	w.publishTo(t, root2, "sensor-2", "not bridged")
	w.publishTo(t, root, "sensor-1", "marker")
	alice.WaitText(patience, room, "sensor-1[devices]", "marker")
	for _, l := range messages2(alice, room2) {
		if l == "not bridged" {
			t.Errorf("a message from a room taken out of its link reached IRC")
		}
	}
	if code, body := apiCall(t, "DELETE", base+"/api/links/nosuch", apiToken, nil); code != http.StatusNotFound {
		t.Errorf("delete unknown link: %d %s", code, body)
	}
}

func messages2(c *testenv.IRCClient, channel string) []string {
	var out []string
	for _, l := range c.Messages(func(l testenv.IRCLine) bool { return strings.EqualFold(l.Target(), channel) }) {
		out = append(out, l.Text())
	}
	return out
}

func waitPayload(t *testing.T, sub *testenv.Subscriber, want string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		m := sub.Next(t, time.Until(deadline))
		if strings.Contains(string(m.Payload), want) {
			return
		}
	}
	t.Fatalf("no MQTT payload with %s", want)
}

// Issue 6, test 4: SIGHUP with a new link starts bridging it without
// touching the connections of rooms that stay; a broken config is
// rejected and the running links keep working.
func TestSIGHUPAddsLinkKeepsConnections(t *testing.T) {
	w := newWorld(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	path := filepath.Join(w.dir, "switchboard.yaml")
	write := func(links string) {
		if err := os.WriteFile(path, []byte(w.yaml("puppet", listen, links)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	logs := testenv.NewLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Run(ctx, path, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("switchboard did not stop")
		}
	})
	waitFor(t, "ready", func() bool {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	alice := w.irc.Client(t, "alice")
	alice.Join(room)
	alice.Join(room2)
	w.publishTo(t, root, "sensor-1", "before")
	alice.WaitText(patience, room, "sensor-1[devices]", "before")
	mark := alice.Len()

	write(`  fresh: [ "libera:` + room2 + `", "devices:` + root2 + `" ]` + "\n")
	hangup(t)
	waitFor(t, "the reload", func() bool { return strings.Contains(logs.String(), "config reloaded") })
	w.publishTo(t, root2, "sensor-2", "on the new link")
	alice.WaitText(patience, room2, "sensor-2[devices]", "on the new link")
	w.publishTo(t, root, "sensor-1", "old link still")
	alice.WaitText(patience, room, "sensor-1[devices]", "old link still")

	write(`  broken: [ "nowhere:#x" ]` + "\n")
	hangup(t)
	waitFor(t, "the rejection", func() bool { return strings.Contains(logs.String(), `unknown network \"nowhere\"`) })
	w.publishTo(t, root, "sensor-1", "after the broken one")
	alice.WaitText(patience, room, "sensor-1[devices]", "after the broken one")
	w.publishTo(t, root2, "sensor-2", "new link after the broken one")
	alice.WaitText(patience, room2, "sensor-2[devices]", "new link after the broken one")

	// Nobody who was in #room left or came back: same connections.
	for _, l := range alice.Lines()[mark:] {
		switch {
		case l.Command == "QUIT":
			t.Errorf("a connection was dropped: %s", l.Raw)
		case (l.Command == "JOIN" || l.Command == "PART") && strings.EqualFold(l.Target(), room):
			t.Errorf("%s rejoined or left %s: %s", l.Nick(), room, l.Raw)
		}
	}
}

// hangup sends SIGHUP to this process, where runUntil catches it.
func hangup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, what, cond)
}

// Issue 6, test 3: an admin's !sb link links rooms, a non-admin's is
// refused, and neither command nor reply reaches any other room.
func TestChatCommandLinksRoomsAndStaysLocal(t *testing.T) {
	w := newWorld(t)
	runService(t, w.config(t, "puppet"))
	lobbyOut := w.mqtt.Subscribe(t, root+"/out/#", 1)
	newOut := w.mqtt.Subscribe(t, root2+"/out/#", 1)
	alice := w.irc.Client(t, "alice") // an admin, by the mask alice!*@*
	alice.Join(room)
	bob := w.irc.Client(t, "bob")
	bob.Join(room)
	fromBot := func(text string) func(testenv.IRCLine) bool {
		return func(l testenv.IRCLine) bool {
			return l.Command == "NOTICE" && strings.EqualFold(l.Nick(), "switchboard") && strings.Contains(l.Text(), text)
		}
	}

	bob.Say(room, "!sb link devices:"+root2)
	bob.WaitMessage(patience, fromBot("only Switchboard admins"))
	alice.Say(room, "!sb link devices:"+root2)
	alice.WaitMessage(patience, fromBot("Linked devices:"+root2))
	w.publishTo(t, root2, "sensor-2", "from the newly linked room")
	alice.WaitText(patience, room, "sensor-2[devices]", "from the newly linked room")

	alice.Say(room, "an ordinary line")
	for _, sub := range []*testenv.Subscriber{lobbyOut, newOut} {
		for {
			m := sub.Next(t, patience)
			if strings.Contains(string(m.Payload), "!sb") || strings.Contains(string(m.Payload), "Linked") || strings.Contains(string(m.Payload), "Sorry") {
				t.Errorf("a command or its reply was bridged: %s", m.Payload)
			}
			if strings.Contains(string(m.Payload), "an ordinary line") {
				break
			}
		}
	}
	// Bob's command reaches alice natively on IRC; no puppet repeats it.
	for _, l := range alice.Messages(func(l testenv.IRCLine) bool { return strings.Contains(l.Nick(), "[") }) {
		if strings.Contains(l.Text(), "!sb") {
			t.Errorf("a puppet repeated a command: %s", l.Raw)
		}
	}
}
