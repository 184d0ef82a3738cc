package testenv

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// DendriteVersion is the Dendrite release .ci/build-dendrite builds.
const DendriteVersion = "v0.15.2"

// MatrixServer is a Dendrite started for a test: one server name, no
// federation, SQLite in a temp dir (or PostgreSQL, see postgres), an appservice registration, and a
// shared registration secret for making users.
type MatrixServer struct {
	// Domain is the server name ("localhost").
	Domain string
	// URL is the client-server API, "http://127.0.0.1:PORT".
	URL string
	// Process lets a test stop, kill or restart the server.
	Process *Process
	// Dir holds the config, key, databases and media; Config is the
	// config file's path.
	Dir    string
	Config string

	secret string
	port   int
	// postgres is the DSN of the PostgreSQL database every component
	// shares, with SWITCHBOARD_DENDRITE_DB=postgres (as production
	// Dendrites run; the default, SQLite, serializes the homeserver's
	// writes and caps a benchmark at what it takes); "" for SQLite.
	postgres string
}

// dendriteBin finds the Dendrite binaries: $SWITCHBOARD_DENDRITE_BIN, else
// the cache dir .ci/build-dendrite builds into. Without them the test is
// skipped, or fails in CI.
func dendriteBin(t testing.TB) string {
	t.Helper()
	dirs := []string{os.Getenv("SWITCHBOARD_DENDRITE_BIN")}
	cache := os.Getenv("SWITCHBOARD_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "switchboard")
		}
	}
	if cache != "" {
		dirs = append(dirs, filepath.Join(cache, "dendrite-"+DendriteVersion, "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(d, "dendrite")); err == nil && !st.IsDir() {
			if _, err := os.Stat(filepath.Join(d, "generate-keys")); err == nil {
				return d
			}
		}
	}
	msg := "dendrite not built (run .ci/build-dendrite and set SWITCHBOARD_DENDRITE_BIN)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Dendrite starts Dendrite on a free loopback port with the appservice
// registration (YAML, as a homeserver reads it; nil for none) and stops it
// when the test ends.
func Dendrite(t testing.TB, registrationYAML []byte) *MatrixServer {
	t.Helper()
	bin := dendriteBin(t)
	dir := t.TempDir()
	port := FreePort(t)
	s := &MatrixServer{
		Domain: "localhost",
		URL:    fmt.Sprintf("http://127.0.0.1:%d", port),
		Dir:    dir,
		secret: "shared-secret-" + strconv.Itoa(os.Getpid()),
		port:   port,
	}
	key := filepath.Join(dir, "matrix_key.pem")
	cmd := exec.Command(filepath.Join(bin, "generate-keys"), "--private-key", key)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate-keys: %v\n%s", err, out)
	}
	var appservices []string
	if registrationYAML != nil {
		appservices = append(appservices, WriteFile(t, dir, "appservice.yaml", string(registrationYAML)))
	}
	if os.Getenv("SWITCHBOARD_DENDRITE_DB") == "postgres" {
		s.postgres = Postgres(t)
	}
	s.Config = WriteFile(t, dir, "dendrite.yaml", s.config(t, key, appservices))
	p := &Process{
		Name:  filepath.Join(bin, "dendrite"),
		Args:  []string{"--config", s.Config, "-http-bind-address", fmt.Sprintf("127.0.0.1:%d", port)},
		Dir:   dir,
		Ready: fmt.Sprintf("127.0.0.1:%d", port),
	}
	p.Start(t)
	s.Process = p
	s.waitReady(t)
	if err := listensOnlyOnPorts(p.Pid(), port); err != nil {
		t.Fatalf("dendrite: %v", err)
	}
	return s
}

func (s *MatrixServer) config(t testing.TB, key string, appservices []string) string {
	t.Helper()
	db := func(name string) string {
		if s.postgres != "" {
			return "\n  database: {}\n" // the global one
		}
		return fmt.Sprintf("\n  database:\n    connection_string: %q\n", "file:"+filepath.Join(s.Dir, name+".db"))
	}
	global, accounts := "", fmt.Sprintf("\n  account_database:\n    connection_string: %q", "file:"+filepath.Join(s.Dir, "userapi.db"))
	if s.postgres != "" {
		global = fmt.Sprintf("\n  database:\n    connection_string: %q\n    max_open_conns: 50\n    max_idle_conns: 10", s.postgres)
		accounts = ""
	}
	// The setup guide's app_service_api section (docs/snippets/dendrite.yaml)
	// names the registration; the test's keys follow it.
	const guideFile = "\n    - /etc/dendrite/switchboard-registration.yaml"
	files := " []"
	if len(appservices) > 0 {
		files = ""
		for _, f := range appservices {
			files += "\n    - " + strconv.Quote(f)
		}
	}
	asAPI := Snippet(t, "dendrite.yaml", map[string]string{guideFile: files}) +
		"  disable_tls_validation: true\n  legacy_auth: false\n  legacy_paths: false\n"
	// Everything stays on loopback: no federation, no TLS listener, no
	// metrics; NATS runs in process and in memory.
	return fmt.Sprintf(`# Generated for a Switchboard test.
version: 2
global:
  server_name: %[1]s%[15]s
  private_key: %[2]q
  key_validity_period: 168h0m0s
  cache:
    max_size_estimated: 64mb
    max_age: 1h
  trusted_third_party_id_servers: []
  disable_federation: true
  presence:
    enable_inbound: false
    enable_outbound: false
  report_stats:
    enabled: false
  jetstream:
    in_memory: true
    storage_path: %[3]q
    topic_prefix: Dendrite
  metrics:
    enabled: false
  dns_cache:
    enabled: false
%[4]sclient_api:
  registration_disabled: true
  guests_disabled: true
  registration_shared_secret: %[5]q
  enable_registration_captcha: false
  rate_limiting:
    enabled: false
federation_api:%[6]s  send_max_retries: 1
  key_perspectives: []
  prefer_direct_fetch: false
key_server:%[7]s
media_api:%[8]s  base_path: %[9]q
  max_file_size_bytes: 10485760
  dynamic_thumbnails: false
mscs:%[10]s  mscs: []
relay_api:%[11]s
room_server:%[12]s
sync_api:%[13]s  search:
    enabled: false
user_api:
  bcrypt_cost: 4%[14]s
tracing:
  enabled: false
logging:
  - type: std
    level: warn
`, s.Domain, key, filepath.Join(s.Dir, "jetstream"), asAPI, s.secret,
		db("federationapi"), db("keyserver"), db("mediaapi"), filepath.Join(s.Dir, "media"),
		db("mscs"), db("relayapi"), db("roomserver"), db("syncapi"),
		accounts, global)
}

// waitReady waits until the client API answers /versions.
func (s *MatrixServer) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dendrite: client API not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restart stops the server and starts it again on the same port with the
// same data.
func (s *MatrixServer) Restart(t testing.TB) {
	t.Helper()
	s.Process.Restart()
	s.waitReady(t)
}

// UserID is @localpart:Domain.
func (s *MatrixServer) UserID(localpart string) id.UserID {
	return id.NewUserID(localpart, s.Domain)
}

// Register creates a user with the shared-secret registration API (the
// one Synapse introduced, which Dendrite implements).
func (s *MatrixServer) Register(t testing.TB, localpart, password string) {
	t.Helper()
	if err := s.register(localpart, password); err != nil {
		t.Fatalf("register %s: %v", localpart, err)
	}
}

func (s *MatrixServer) register(localpart, password string) error {
	const path = "/_synapse/admin/v1/register"
	resp, err := http.Get(s.URL + path)
	if err != nil {
		return err
	}
	var n struct {
		Nonce string `json:"nonce"`
	}
	err = json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	mac := hmac.New(sha1.New, []byte(s.secret))
	mac.Write([]byte(n.Nonce + "\x00" + localpart + "\x00" + password + "\x00notadmin"))
	body, _ := json.Marshal(map[string]any{
		"nonce": n.Nonce, "username": localpart, "password": password, "admin": false,
		"mac": hex.EncodeToString(mac.Sum(nil)),
	})
	resp, err = http.Post(s.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e bytes.Buffer
		e.ReadFrom(resp.Body)
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.String())
	}
	return nil
}

// MatrixClient is a user of a MatrixServer: it logs in, acts in rooms and
// records every room event its sync sees.
type MatrixClient struct {
	*mautrix.Client
	t testing.TB

	mu      sync.Mutex
	events  []*event.Event
	invites []id.RoomID
	changed chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

// Client registers a user (when new), logs in and starts syncing; the
// sync stops when the test ends.
func (s *MatrixServer) Client(t testing.TB, localpart string) *MatrixClient {
	t.Helper()
	password := "password-" + localpart
	if err := s.register(localpart, password); err != nil && !strings.Contains(err.Error(), "M_USER_IN_USE") {
		t.Fatalf("register %s: %v", localpart, err)
	}
	cli, err := mautrix.NewClient(s.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli.DefaultHTTPRetries = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
		Password:         password,
		StoreCredentials: true,
	}); err != nil {
		t.Fatalf("login %s: %v", localpart, err)
	}
	c := &MatrixClient{Client: cli, t: t, changed: make(chan struct{}), done: make(chan struct{})}
	sctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.syncLoop(sctx)
	t.Cleanup(func() {
		stop()
		<-c.done
	})
	return c
}

func (c *MatrixClient) syncLoop(ctx context.Context) {
	defer close(c.done)
	since := ""
	seen := map[id.EventID]bool{}
	for ctx.Err() == nil {
		// Dendrite's default timeline limit (20) skips events when more
		// than that arrive between two syncs (a "limited" timeline), as
		// under a benchmark's load on a busy machine: the incremental
		// syncs ask for all of them.
		filter := ""
		if since != "" {
			filter = `{"room":{"timeline":{"limit":1000}}}`
		}
		resp, err := c.SyncRequest(ctx, 1000, since, filter, since == "", event.PresenceOffline)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		since = resp.NextBatch
		var got []*event.Event
		var invited []id.RoomID
		for rid, room := range resp.Rooms.Join {
			for _, evt := range room.Timeline.Events {
				// A client shows an event once, by id: Dendrite may hand
				// one out again (a room just joined, a sync retried under
				// load), and a test counting what a user saw must not
				// count it twice.
				if evt.ID != "" && seen[evt.ID] {
					continue
				}
				seen[evt.ID] = true
				evt.RoomID = rid
				got = append(got, evt)
			}
			for _, evt := range room.Ephemeral.Events {
				evt.RoomID = rid
				evt.Type.Class = event.EphemeralEventType
				got = append(got, evt)
			}
		}
		for rid := range resp.Rooms.Invite {
			invited = append(invited, rid)
		}
		for _, evt := range got {
			if evt.Type.Class == event.UnknownEventType {
				if evt.StateKey != nil {
					evt.Type.Class = event.StateEventType
				} else {
					evt.Type.Class = event.MessageEventType
				}
			}
			_ = evt.Content.ParseRaw(evt.Type)
		}
		if len(got) == 0 && len(invited) == 0 {
			continue
		}
		c.mu.Lock()
		c.events = append(c.events, got...)
		c.invites = append(c.invites, invited...)
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// Events returns what the sync has seen so far, oldest first (within a
// sync batch, grouped by room).
func (c *MatrixClient) Events() []*event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*event.Event(nil), c.events...)
}

// WaitFor returns the first recorded event, at index from or later, that
// matches, with its index.
func (c *MatrixClient) WaitFor(ctx context.Context, from int, match func(*event.Event) bool) (*event.Event, int, error) {
	for {
		c.mu.Lock()
		for i := from; i < len(c.events); i++ {
			if match(c.events[i]) {
				evt := c.events[i]
				c.mu.Unlock()
				return evt, i, nil
			}
		}
		changed := c.changed
		n := len(c.events)
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, n, fmt.Errorf("no matching event among %d: %w", n-from, ctx.Err())
		}
	}
}

// WaitInvite waits for an invite to a room and returns its id.
func (c *MatrixClient) WaitInvite(ctx context.Context, match func(id.RoomID) bool) (id.RoomID, error) {
	for {
		c.mu.Lock()
		for _, r := range c.invites {
			if match == nil || match(r) {
				c.mu.Unlock()
				return r, nil
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return "", errors.New("no invite")
		}
	}
}

func (c *MatrixClient) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// NewRoom creates a room; public ones anyone may join, alias ("" for
// none) is the alias localpart.
func (c *MatrixClient) NewRoom(public bool, alias string, invite ...id.UserID) id.RoomID {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	preset := "private_chat"
	if public {
		preset = "public_chat"
	}
	resp, err := c.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: preset, RoomAliasName: alias, Invite: invite})
	if err != nil {
		c.t.Fatalf("%s: create room: %v", c.UserID, err)
	}
	return resp.RoomID
}

// NewDM creates a direct chat with user, as Matrix clients do: a
// trusted private chat whose invite is marked is_direct.
func (c *MatrixClient) NewDM(user id.UserID) id.RoomID {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", Invite: []id.UserID{user}, IsDirect: true})
	if err != nil {
		c.t.Fatalf("%s: create a direct chat with %s: %v", c.UserID, user, err)
	}
	return resp.RoomID
}

// Join joins a room by id or alias.
func (c *MatrixClient) Join(room string) id.RoomID {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.JoinRoom(ctx, room, nil)
	if err != nil {
		c.t.Fatalf("%s: join %s: %v", c.UserID, room, err)
	}
	return resp.RoomID
}

// Send posts message content and returns the event id.
func (c *MatrixClient) Send(room id.RoomID, content *event.MessageEventContent) (id.EventID, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.SendMessageEvent(ctx, room, event.EventMessage, content)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

func (c *MatrixClient) mustSend(room id.RoomID, typ event.Type, content any) id.EventID {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.SendMessageEvent(ctx, room, typ, content)
	if err != nil {
		c.t.Fatalf("%s: send %s: %v", c.UserID, typ.Type, err)
	}
	return resp.EventID
}

// Text sends an m.text message.
func (c *MatrixClient) Text(room id.RoomID, text string) id.EventID {
	c.t.Helper()
	return c.mustSend(room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
}

// HTML sends an m.text message with a formatted body.
func (c *MatrixClient) HTML(room id.RoomID, text, html string) id.EventID {
	c.t.Helper()
	return c.mustSend(room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text, Format: event.FormatHTML, FormattedBody: html})
}

// Emote sends an m.emote; Notice an m.notice.
func (c *MatrixClient) Emote(room id.RoomID, text string) id.EventID {
	c.t.Helper()
	return c.mustSend(room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgEmote, Body: text})
}

func (c *MatrixClient) Notice(room id.RoomID, text string) id.EventID {
	c.t.Helper()
	return c.mustSend(room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgNotice, Body: text})
}

// Edit replaces the text of an earlier message (m.replace).
func (c *MatrixClient) Edit(room id.RoomID, target id.EventID, text string) id.EventID {
	c.t.Helper()
	return c.mustSend(room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgText, Body: "* " + text,
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: text},
		RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: target},
	})
}

// Reply answers an earlier message (m.in_reply_to).
func (c *MatrixClient) Reply(room id.RoomID, target id.EventID, text string) id.EventID {
	c.t.Helper()
	return c.mustSend(room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgText, Body: text,
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: target}},
	})
}

// React annotates an earlier message with key.
func (c *MatrixClient) React(room id.RoomID, target id.EventID, key string) id.EventID {
	c.t.Helper()
	return c.mustSend(room, event.EventReaction, &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: target, Key: key},
	})
}

// Redact removes an earlier event.
func (c *MatrixClient) Redact(room id.RoomID, target id.EventID) id.EventID {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.RedactEvent(ctx, room, target)
	if err != nil {
		c.t.Fatalf("%s: redact %s: %v", c.UserID, target, err)
	}
	return resp.EventID
}

// Leave leaves a room.
func (c *MatrixClient) Leave(room id.RoomID) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.LeaveRoom(ctx, room); err != nil {
		c.t.Fatalf("%s: leave %s: %v", c.UserID, room, err)
	}
}

// Rename sets the user's display name.
func (c *MatrixClient) Rename(name string) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.SetDisplayName(ctx, name); err != nil {
		c.t.Fatalf("%s: set display name: %v", c.UserID, err)
	}
}

// Invite invites a user to a room.
func (c *MatrixClient) Invite(room id.RoomID, user id.UserID) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: user}); err != nil {
		c.t.Fatalf("%s: invite %s: %v", c.UserID, user, err)
	}
}

// DisplayName is a user's display name as the server reports it.
func (c *MatrixClient) DisplayName(user id.UserID) string {
	ctx, cancel := c.ctx()
	defer cancel()
	res, err := c.GetDisplayName(ctx, user)
	if err != nil {
		return ""
	}
	return res.DisplayName
}
