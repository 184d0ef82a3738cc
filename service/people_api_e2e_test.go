package service

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Issue 21, item 1 and test 7 through the provisioning API: a person put
// over the API speaks from their own IRC account at once (InspIRCd with
// Atheme, SASL) and after a restart; a bad entry gets a 400 naming each
// field as `switchboard check` would; the password is never returned,
// logged or shown on /status; a PUT without the password keeps it; a
// file person deleted over the API stays hidden across a restart.
func TestAPIPersonSpeaksAtOnceAndAfterRestart(t *testing.T) {
	const password = "alice-secret-pw"
	services := testenv.Atheme(t)
	services.RegisterAccount(t, "alice", password)
	broker := testenv.Mosquitto(t)
	bob := services.IRC.Client(t, "bob")
	bob.Join("#lobby")
	dir := t.TempDir()
	configWith := func(people string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0", api_token: %s }
networks:
  libera: { type: irc, server: %q, nick: switchboard, rate: { per_second: 0 } }
  devices: { type: mqtt, broker: %q, client_id: sb-people-api }
links:
  lobby: [ "libera:#lobby", "devices:chat/lobby" ]
people:
  carol: { accounts: { devices: carols-phone } }
%s`, dir, apiToken, services.IRC.Addr, broker.URL, people)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := configWith("")
	log := testenv.NewLog(t)
	svc, stop := runServiceLogging(t, cfg, log)
	base := "http://" + svc.HTTPAddr
	dev := broker.Client(t, "")
	say := func(device, text string) testenv.IRCLine {
		t.Helper()
		testenv.MQTTPublish(t, dev, "chat/lobby/in/"+device, 1, false, text)
		return bob.WaitText(patience, "#lobby", "", text)
	}

	alice := map[string]any{
		"name": "Alice Liddell", "home": "devices",
		"accounts": map[string]any{
			"libera":  map[string]any{"id": "alice", "password": password},
			"devices": "carols-phone", // carol's
			"nosuch":  "alice",
		},
	}
	code, body := apiCall(t, "PUT", base+"/api/people/alice", "wrong-token-0123456789", alice)
	if code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %s, want 401", code, body)
	}
	code, body = apiCall(t, "PUT", base+"/api/people/alice", apiToken, alice)
	var apiErr httpapi.ErrorBody
	json.Unmarshal(body, &apiErr)
	var fields []string
	for _, f := range apiErr.Fields {
		fields = append(fields, f.Field)
	}
	if code != http.StatusBadRequest || strings.Join(fields, " ") != "people.alice.accounts.devices people.alice.accounts.nosuch" ||
		!strings.Contains(apiErr.Error, "already an account of carol") || !strings.Contains(apiErr.Error, `no network "nosuch"`) {
		t.Fatalf("bad person: %d %s, want 400 naming people.alice.accounts.devices and .nosuch", code, body)
	}
	if got := personIDs(t, base); got != "carol(config)" {
		t.Fatalf("after a refused PUT the people are %s", got)
	}
	// Issue 22, test 4: a home that Switchboard holds is refused as
	// check refuses it, naming the field.
	code, body = apiCall(t, "PUT", base+"/api/people/alice", apiToken, map[string]any{
		"home": "libera", "accounts": map[string]any{"libera": map[string]any{"id": "alice", "password": password}, "devices": "alices-phone"},
	})
	apiErr = httpapi.ErrorBody{}
	json.Unmarshal(body, &apiErr)
	if code != http.StatusBadRequest || len(apiErr.Fields) != 1 || apiErr.Fields[0].Field != "people.alice.home" ||
		!strings.Contains(apiErr.Error, "Switchboard holds their nick there") || strings.Contains(string(body), password) {
		t.Fatalf("home libera: %d %s, want 400 naming people.alice.home", code, body)
	}
	if got := personIDs(t, base); got != "carol(config)" {
		t.Fatalf("after a refused PUT the people are %s", got)
	}
	if l := say("alices-phone", "before she is known"); l.Nick() == "alice" {
		t.Fatalf("an unknown device spoke from alice's nick")
	}

	alice["accounts"] = map[string]any{
		"libera":  map[string]any{"id": "alice", "password": password},
		"devices": "alices-phone",
	}
	code, body = apiCall(t, "PUT", base+"/api/people/alice", apiToken, alice)
	if code != http.StatusCreated || !strings.Contains(string(body), `"password": "set"`) || !strings.Contains(string(body), `"source": "runtime"`) {
		t.Fatalf("create: %d %s", code, body)
	}
	if l := say("alices-phone", "hello from my phone"); l.Nick() != "alice" {
		t.Errorf("alice's message came from %q, want her own nick alice", l.Nick())
	}

	// A new name without resending the password keeps it.
	alice["name"] = "Alice L."
	alice["accounts"] = map[string]any{"libera": "alice", "devices": "alices-phone"}
	code, body = apiCall(t, "PUT", base+"/api/people/alice", apiToken, alice)
	if code != http.StatusOK || !strings.Contains(string(body), `"name": "Alice L."`) || !strings.Contains(string(body), `"password": "set"`) {
		t.Fatalf("rename: %d %s, want 200 with the password still set", code, body)
	}
	if l := say("alices-phone", "renamed"); l.Nick() != "alice" {
		t.Errorf("after a rename alice's message came from %q, want alice", l.Nick())
	}

	// A file person deleted over the API.
	if code, body := apiCall(t, "DELETE", base+"/api/people/carol", apiToken, nil); code != http.StatusNoContent {
		t.Fatalf("delete carol: %d %s", code, body)
	}
	if code, _ := apiCall(t, "DELETE", base+"/api/people/carol", apiToken, nil); code != http.StatusNotFound {
		t.Errorf("delete carol again: %d, want 404", code)
	}

	for _, url := range []string{base + "/api/people", base + "/api/people/alice"} {
		if _, body := apiCall(t, "GET", url, apiToken, nil); strings.Contains(string(body), password) {
			t.Errorf("GET %s shows the password", url)
		}
	}
	for _, url := range []string{base + "/status", base + "/api/status"} {
		if _, page := httpGet(t, url); strings.Contains(page, password) {
			t.Errorf("%s shows the password", url)
		}
	}

	stop()
	svc, _ = runServiceLogging(t, cfg, log)
	base = "http://" + svc.HTTPAddr
	if got := personIDs(t, base); got != "alice(runtime)" {
		t.Fatalf("after a restart the people are %s, want alice(runtime) (carol stays deleted)", got)
	}
	if l := say("alices-phone", "after restart"); l.Nick() != "alice" {
		t.Errorf("after a restart alice's message came from %q, want alice", l.Nick())
	}

	// A reload lays the API's people over the new file's, as at a start;
	// a file that claims an account of hers is refused.
	if err := svc.reload(t.Context(), configWith("  dave: { accounts: { devices: daves-phone } }")); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := personIDs(t, base); got != "alice(runtime),dave(config)" {
		t.Errorf("after a reload the people are %s", got)
	}
	if err := svc.reload(t.Context(), configWith("  eve: { accounts: { devices: alices-phone } }")); err == nil ||
		!strings.Contains(err.Error(), "people.eve.accounts.devices") {
		t.Errorf("a reload claiming alice's device: %v, want it refused naming people.eve.accounts.devices", err)
	}
	if l := say("alices-phone", "after reload"); l.Nick() != "alice" {
		t.Errorf("after a reload alice's message came from %q, want alice", l.Nick())
	}
	if strings.Contains(log.String(), password) {
		t.Errorf("the log shows the password")
	}
}

// personIDs lists the API's people as id(source).
func personIDs(t *testing.T, base string) string {
	t.Helper()
	code, body := apiCall(t, "GET", base+"/api/people", apiToken, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/people: %d %s", code, body)
	}
	var list struct{ People []httpapi.Person }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list.People {
		ids = append(ids, p.ID+"("+p.Source+")")
	}
	return strings.Join(ids, ",")
}
