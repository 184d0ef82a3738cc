package service

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/status"
)

// An XMPP user writes to an IRC user who is not online: the message is
// not kept for whoever takes the nick; the writer is told, and the
// operator finds it in the failed list and sends it again once she is
// there.
func TestFailedDirectMessageToldListedAndRetried(t *testing.T) {
	w := newXWorld(t)
	cfg := w.config(t, "puppet")
	cfg.HTTP.APIToken = apiToken
	svc, _ := runService(t, cfg)
	base := "http://" + svc.HTTPAddr
	alice := w.person(t, "alice")
	// carol's puppet JID is bob's with her nick.
	bobJID := w.puppetJID(t, alice, w.human(t, "bob"), "bob")
	carolJID, err := jid.Parse(strings.Replace(bobJID.Bare().String(), "bob", "carol", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Chat(carolJID, "are you there, carol?"); err != nil {
		t.Fatal(err)
	}
	told := alice.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "chat" && strings.HasPrefix(s.Body(), "Your message to carol")
	})
	if want := "Your message to carol (libera) was not delivered: carol is not online."; told.Body() != want {
		t.Errorf("alice was told %q, want %q", told.Body(), want)
	}

	var list struct {
		Failed []httpapi.Failed `json:"failed"`
	}
	code, body := apiCall(t, "GET", base+"/api/failed", apiToken, nil)
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/failed: %d %s %v", code, body, err)
	}
	if len(list.Failed) != 1 || list.Failed[0].Text != "are you there, carol?" || !strings.Contains(list.Failed[0].Reason, "carol is not online") ||
		!strings.HasPrefix(list.Failed[0].Sender, "jabber:alice@") || list.Failed[0].Kind != "message" {
		t.Fatalf("failed list %s", body)
	}
	seq := list.Failed[0].Seq
	// The operator sees it counted in the status, the page and the metrics.
	failedRoom := list.Failed[0].Room
	network, roomName, _ := strings.Cut(failedRoom, ":")
	series := fmt.Sprintf(`switchboard_failed_deliveries{network=%q,room=%q}`, network, roomName)
	waitMetrics(t, svc, map[string]float64{series: 1})
	if st := getStatus(t, svc); st.Outbox.Failed != 1 || !hasFailedRoom(st.Outbox.Rooms, failedRoom, 1) {
		t.Errorf("/api/status outbox %+v, want 1 failed for %s", st.Outbox, failedRoom)
	}
	if _, page := httpGet(t, base+"/status"); !strings.Contains(page, "1 failed") {
		t.Errorf("/status does not show the failed delivery:\n%s", page)
	}
	if code, _ := apiCall(t, "GET", base+"/api/failed", "wrong-token-0123456789", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/failed with a wrong token: %d", code)
	}

	// carol comes online; the operator sends it again.
	carol := w.human(t, "carol")
	if code, body := apiCall(t, "POST", fmt.Sprintf("%s/api/failed/%d/retry", base, seq), apiToken, nil); code != http.StatusAccepted {
		t.Fatalf("retry: %d %s", code, body)
	}
	pm := carol.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return strings.EqualFold(l.Target(), "carol") && l.Text() == "are you there, carol?"
	})
	if pm.Nick() != "alice[jabber]" {
		t.Errorf("the private message came from %q, want alice[jabber]", pm.Nick())
	}
	code, body = apiCall(t, "GET", base+"/api/failed", apiToken, nil)
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || len(list.Failed) != 0 {
		t.Errorf("failed list after the retry: %d %s", code, body)
	}
	if st := getStatus(t, svc); st.Outbox.Failed != 0 || hasFailedRoom(st.Outbox.Rooms, failedRoom, 1) {
		t.Errorf("/api/status outbox after the retry %+v", st.Outbox)
	}
	if _, metrics := httpGet(t, base+"/metrics"); strings.Contains(metrics, series) {
		t.Errorf("%s still reported after the retry", series)
	}
	for _, c := range []struct{ method, path string }{{"POST", "/retry"}, {"DELETE", ""}} {
		if code, _ := apiCall(t, c.method, fmt.Sprintf("%s/api/failed/%d%s", base, seq, c.path), apiToken, nil); code != http.StatusNotFound {
			t.Errorf("%s of a delivery no longer failed: %d, want 404", c.method, code)
		}
	}
	if code, _ := apiCall(t, "GET", base+"/api/failed?limit=0", apiToken, nil); code != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", code)
	}
}

func hasFailedRoom(rooms []status.Room, room string, n int) bool {
	for _, r := range rooms {
		if r.Room == room && r.Failed == n {
			return true
		}
	}
	return false
}
