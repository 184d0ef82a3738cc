// These are the configuration's tests with the network types Switchboard
// ships, all registered: the example file, and what the file format,
// defaults, validation and redaction do with networks of several types
// together. A type's own keys are tested in its package (configtest);
// config's machinery alone in config, with a fake type.
package all_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/config/configtest"
	"github.com/switchboard-chat/switchboard/irc"
	"github.com/switchboard-chat/switchboard/mapping"
	"github.com/switchboard-chat/switchboard/matrix"
	"github.com/switchboard-chat/switchboard/mqtt"
	"github.com/switchboard-chat/switchboard/webrtc"
	"github.com/switchboard-chat/switchboard/xmpp"
)

const examplePath = "../../switchboard.example.yaml"

// exampleEnv is what the example's required ${...} references need.
var exampleEnv = map[string]string{
	"LIBERA_SASL_PASSWORD":    "sasl-secret",
	"JABBER_COMPONENT_SECRET": "component-secret",
	"JABBER_RELAY_PASSWORD":   "relay-password",
	"MATRIX_AS_TOKEN":         "as-token",
	"MATRIX_HS_TOKEN":         "hs-token",
	"WEB_OPS_TOKEN":           "ops-token",
	"TURN_CREDENTIAL":         "turn-credential",
}

// valid is a small correct config; bad cases change one thing in it.
const valid = `
networks:
  libera:
    type: irc
    server: irc.example.org:6697
    nick: switchboard
  devices:
    type: mqtt
    broker: tcp://127.0.0.1:1883
links:
  lobby: ["libera:#lobby", "devices:chat/lobby"]
`

func TestBadConfigs(t *testing.T) {
	configtest.RunBad(t, []configtest.BadConfig{
		{
			Name: "bad ignore patterns",
			YAML: strings.Replace(valid, "nick: switchboard", `nick: switchboard
    ignore: ["*bot*", "", "/a(b/", "//"]`, 1),
			Want: []string{
				`networks.libera.ignore[1]: empty pattern`,
				"networks.libera.ignore[2]: bad regular expression: error parsing regexp: missing closing ): `a(b`",
				`networks.libera.ignore[3]: empty regular expression`,
			},
		},
		{
			Name: "bad link options",
			YAML: valid + `link_options:
  lobby: { ignore: ["ok", "/[/"] }
  lobyy: { ignore: ["x"] }
  other: { ignroe: ["x"] }
`,
			Want: []string{
				"link_options.lobby.ignore[1]: bad regular expression: error parsing regexp: missing closing ]: `[`",
				`link_options.lobyy: no link "lobyy" in links`,
				`link_options.other.ignroe: unknown key`,
			},
		},
		{
			Name: "ignore_services on a network without services",
			YAML: strings.Replace(valid, "broker: tcp://127.0.0.1:1883", "broker: tcp://127.0.0.1:1883\n    ignore_services: false", 1),
			Want: []string{`networks.devices.ignore_services: unknown key for a network of type mqtt`},
		},
		{
			Name: "unknown network type",
			YAML: "networks: {x: {type: foo, server: a:1}}",
			Want: []string{`networks.x.type: unknown network type "foo" (known: irc, matrix, mqtt, webrtc, xmpp)`},
		},
		{
			Name: "kick_blocks where nothing kicks",
			YAML: "networks: {d: {type: mqtt, broker: tcp://127.0.0.1:1883, kick_blocks: true}}",
			Want: []string{`networks.d.kick_blocks: only irc, matrix, xmpp rooms kick, not mqtt`},
		},
		{
			Name: "kick_blocks not a bool",
			YAML: "networks: {l: {type: irc, server: a:1, nick: sb, kick_blocks: often}}",
			Want: []string{`networks.l.kick_blocks: want true or false, got "often"`},
		},
		{
			Name: "missing network type",
			YAML: "networks: {x: {mode: relay}, y: }",
			Want: []string{
				`networks.x.type: required (known: irc, matrix, mqtt, webrtc, xmpp)`,
				`networks.y.type: required (known: irc, matrix, mqtt, webrtc, xmpp)`,
			},
		},
		{
			Name: "link names unknown network",
			YAML: strings.Replace(valid, `"devices:chat/lobby"`, `"libera2:#x"`, 1),
			Want: []string{`links.lobby[1]: unknown network "libera2"`},
		},
		{
			Name: "malformed room address",
			YAML: strings.Replace(valid, `"libera:#lobby"`, `"libera"`, 1),
			Want: []string{`links.lobby[0]: room address "libera": want network:room`},
		},
		{
			Name: "empty network in room address",
			YAML: strings.Replace(valid, `"libera:#lobby"`, `":#lobby"`, 1),
			Want: []string{`links.lobby[0]: room address ":#lobby": empty network name`},
		},
		{
			Name: "unknown key in network",
			YAML: strings.Replace(valid, "server:", "sevrer:", 1),
			Want: []string{
				`networks.libera.sevrer: unknown key for a network of type irc`,
				`networks.libera.server: required (want host:port)`,
			},
		},
		{
			Name: "key of another network type",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    client_id: x", 1),
			Want: []string{`networks.libera.client_id: unknown key for a network of type irc`},
		},
		{
			Name: "bad rates",
			YAML: `
networks:
  a: {type: irc, server: "h:1", nick: x, rate: {per_second: -1}}
  b: {type: mqtt, broker: "tcp://h:1", rate: {per_second: 2, burst: 0}}
  c: {type: matrix, homeserver: "http://h:1", domain: h, as_token: a, hs_token: b, rate: {per_second: .inf}}
`,
			Want: []string{
				`networks.a.rate.per_second: must be a number of at least 0 (0: no limit), got -1`,
				`networks.b.rate.burst: must be at least 1, got 0`,
				`networks.c.rate.per_second: must be a number of at least 0 (0: no limit), got +Inf`,
			},
		},
		{
			Name: "unknown top-level key",
			YAML: valid + "datadir: /tmp\n",
			Want: []string{`datadir: unknown key`},
		},
		{
			Name: "unknown nested keys",
			YAML: valid + "http: {lisen: ':1'}\n",
			Want: []string{`http.lisen: unknown key`},
		},
		{
			Name: "unknown key in a nested network section",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    flood: {brust: 3}\n    puppets: {maxx: 3}", 1),
			Want: []string{
				`networks.libera.flood.brust: unknown key`,
				`networks.libera.puppets.maxx: unknown key`,
			},
		},
		{
			Name: "bad port",
			YAML: valid + "http: {listen: '127.0.0.1:99999'}\nbroker: {listen: 'localhost:x'}\n",
			Want: []string{
				`broker.listen: invalid port "x" (want 1-65535)`,
				`http.listen: invalid port "99999" (want 1-65535)`,
			},
		},
		{
			Name: "env var unset",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    sasl: {user: me, password: '${NOPE}'}", 1),
			Want: []string{`networks.libera.sasl.password: environment variable NOPE is not set (use ${NOPE:-default} for an optional value)`},
		},
		{
			Name: "env reference malformed",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: ${BOT", 1),
			Want: []string{`networks.libera.nick: unterminated ${ (write $${ for a literal ${)`},
		},
		{
			Name: "wrong scalar types",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    tls: maybe\n    max_line_bytes: lots\n    reconnect_max: 5\n    flood: {interval: 1 second}", 1),
			Want: []string{
				`networks.libera.flood.interval: want a duration such as 30s, 5m, 1h30m or 90d, got "1 second"`,
				`networks.libera.max_line_bytes: want an integer, got "lots"`,
				`networks.libera.reconnect_max: want a duration such as 30s, 5m, 1h30m or 90d, got "5"`,
				`networks.libera.tls: want true or false, got "maybe"`,
			},
		},
		{
			Name: "wrong node kinds",
			YAML: "http: 8080\nlinks: {x: '#a'}\n",
			Want: []string{
				`http: want a mapping, got a scalar`,
				`links.x: want a list, got a scalar`,
			},
		},
		{
			Name: "duplicate key",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    nick: other", 1),
			Want: []string{`networks.libera.nick: duplicate key`},
		},
		{
			Name: "mode, puppets and flood out of range",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    mode: mirror\n    puppets: {max: -1, template: bot}\n    flood: {burst: -2, interval: -1s}", 1),
			Want: []string{
				`networks.libera.flood.burst: must be at least 1, got -2`,
				`networks.libera.flood.interval: must not be negative, got -1s`,
				`networks.libera.mode: want puppet or relay, got "mirror"`,
				`networks.libera.puppets.max: must not be negative, got -1`,
				`networks.libera.puppets.template: must contain {name} or {id}`,
			},
		},
		{
			Name: "explicit zeros",
			YAML: strings.Replace(strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    flood: {burst: 0}\n    puppets: {idle: 0}\n    max_line_bytes: 0\n    max_message_lines: 0\n    reconnect_max: 0", 1), "broker: tcp://127.0.0.1:1883", "broker: tcp://127.0.0.1:1883\n    max_payload: 0", 1),
			Want: []string{
				`networks.devices.max_payload: must be positive, got 0`,
				`networks.libera.flood.burst: must be at least 1, got 0`,
				`networks.libera.max_line_bytes: must be at least 64, got 0`,
				`networks.libera.max_message_lines: must be at least 2, got 0`,
				`networks.libera.puppets.idle: must be positive, got 0s`,
				`networks.libera.reconnect_max: must be positive, got 0s`,
			},
		},
		{
			Name: "network name",
			YAML: "networks: {Libera: {type: mqtt, broker: 'tcp://h:1'}}",
			Want: []string{`networks.Libera: invalid network name "Libera" (want lowercase letters, digits, _ and -)`},
		},
		{
			Name: "store, data_dir and log",
			YAML: valid + "store: mysql://root@db/x\ndata_dir: ' '\nlog: {level: loud, format: xml}\n",
			Want: []string{
				`data_dir: required`,
				`log.format: want one of text, json, got "xml"`,
				`log.level: want one of debug, info, warn, error, got "loud"`,
				`store: want "sqlite" or a postgres:// URL, got a mysql:// URL`,
			},
		},
		{
			Name: "sqlite_synchronous",
			YAML: valid + "sqlite_synchronous: off\n",
			Want: []string{`sqlite_synchronous: want one of full, normal, got "off"`},
		},
		{
			Name: "sqlite_synchronous with postgres",
			YAML: valid + "store: postgres://sb@db/sb\nsqlite_synchronous: normal\n",
			Want: []string{`sqlite_synchronous: only applies to the sqlite store`},
		},
		{
			Name: "room listed twice",
			YAML: strings.Replace(valid, `"devices:chat/lobby"`, `"libera:#lobby"`, 1),
			Want: []string{`links.lobby[1]: room libera:#lobby listed twice`},
		},
		{
			Name: "room in two links and an empty link",
			YAML: valid + "  x: [\"devices:chat/lobby\"]\n  y: []\n  z: [\"libera:#new\", \"libera:#lobby\"]\n",
			Want: []string{
				`links.x[0]: room devices:chat/lobby is already in link "lobby"`,
				`links.y: a link needs at least one room`,
				`links.z[1]: room libera:#lobby is already in link "lobby"`,
			},
		},
		{
			Name: "link name",
			YAML: valid + "  \"a.b\": [\"libera:#other\"]\n",
			Want: []string{`links.a.b: invalid link name "a.b" (want letters, digits, _ and -)`},
		},
		{
			Name: "two documents",
			YAML: valid + "---\ndata_dir: x\n",
			Want: []string{`config holds more than one YAML document`},
		},
		{
			Name: "yaml syntax",
			YAML: "networks: [",
			Want: []string{`yaml: line 1: did not find expected node content`},
		},
		{
			Name: "top level not a mapping",
			YAML: "- a\n",
			Want: []string{`want a mapping, got a list`},
		},
	})
}

// TestErrorsCollected checks that every problem is reported at once, in
// path order with indexes compared as numbers, and that a key whose value
// could not be read is not reported again by validation.
func TestErrorsCollected(t *testing.T) {
	rooms := make([]string, 11)
	for i := range rooms {
		rooms[i] = fmt.Sprintf(`"libera:#r%d"`, i)
	}
	rooms[2], rooms[10] = `"libera:r2"`, `"libera:r10"`
	in := `
networks:
  libera: {type: irc, server: "h:1", nick: "${NICK}", flood: {burst: many}}
  x: {type: foo}
links:
  big: [` + strings.Join(rooms, ", ") + `]
  lobby: ["x:#a", "nowhere:#b"]
`
	_, err := config.ParseEnv([]byte(in), nil)
	want := strings.Join([]string{
		`links.big[2]: invalid irc room "r2": an IRC channel starts with # or &`,
		`links.big[10]: invalid irc room "r10": an IRC channel starts with # or &`,
		`links.lobby[1]: unknown network "nowhere"`,
		`networks.libera.flood.burst: want an integer, got "many"`,
		`networks.libera.nick: environment variable NICK is not set (use ${NICK:-default} for an optional value)`,
		`networks.x.type: unknown network type "foo" (known: irc, matrix, mqtt, webrtc, xmpp)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Path != "links.big[2]" {
		t.Errorf("errors.As: %#v", fe)
	}
}

func TestGoodConfigDefaults(t *testing.T) {
	c, err := config.ParseEnv([]byte(valid), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.Store != "sqlite" || c.SQLiteSynchronous != "full" || c.StoreDSN() != "sqlite" || c.HTTP.Listen != "127.0.0.1:8080" {
		t.Errorf("top-level defaults: %+v", c)
	}
	if c.Broker != nil {
		t.Errorf("broker without a broker section: %+v", c.Broker)
	}
	if c.Log != (config.Log{Level: "info", Format: "text"}) {
		t.Errorf("log: %+v", c.Log)
	}
	libera := c.Networks["libera"]
	if libera.Mode != "puppet" || libera.Puppets != (config.Puppets{Template: "{name}[{network}]", Max: 50, Idle: 30 * time.Minute}) {
		t.Errorf("irc common defaults: %+v", libera)
	}
	wantIRC := irc.Config{
		Server: "irc.example.org:6697", Nick: "switchboard", Username: "switchboard",
		Realname: "Switchboard bridge", Flood: irc.Flood{Burst: 5, Interval: time.Second},
		MaxLineBytes: 512, MaxMessageLines: 5, ReconnectMax: 2 * time.Minute, IgnoreServices: true,
		Rate:    config.Rate{PerSecond: 1, Burst: 10},
		CatchUp: config.CatchUp{MaxMessages: 500, MaxAge: 24 * time.Hour},
		Shards:  1,
	}
	if got, ok := libera.Section.(*irc.Config); !ok || *got != wantIRC {
		t.Errorf("irc section: %#v", libera.Section)
	}
	mq := c.Networks["devices"]
	if mq.Mode != "puppet" || mq.Puppets != (config.Puppets{Max: 50, Idle: 30 * time.Minute}) {
		t.Errorf("mqtt common defaults: %+v", mq)
	}
	// No limit on devices unless asked for.
	wantMQTT := mqtt.Config{Broker: "tcp://127.0.0.1:1883", ClientID: "switchboard-devices", MaxPayload: 65536}
	if got, ok := mq.Section.(*mqtt.Config); !ok || *got != wantMQTT {
		t.Errorf("mqtt section: %#v", mq.Section)
	}
	links, err := c.Links()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]bridge.RoomAddr{"lobby": {{Network: "libera", Room: "#lobby"}, {Network: "devices", Room: "chat/lobby"}}}
	if !reflect.DeepEqual(links, want) {
		t.Errorf("Links() = %v", links)
	}
}

func TestGoodConfigs(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *config.Config)
	}{
		{"empty file", "", func(t *testing.T, c *config.Config) {
			if c.DataDir != "./data" || len(c.Networks) != 0 {
				t.Errorf("%+v", c)
			}
		}},
		{"explicit values kept", `
data_dir: /var/lib/sb
store: postgresql://sb@db/sb
http: {listen: ":0"}
broker: {}
log: {level: debug, format: json}
networks:
  oftc:
    type: irc
    mode: relay
    server: "[::1]:6697"
    tls: true
    nick: "sb[bot]"
    username: ident
    puppets: {template: "{id}|x", max: 3, idle: 1h}
    flood: {burst: 1, interval: 0}
    reconnect_max:
    rate: {per_second: 0}
  dev:
    type: mqtt
    broker: ws://h:80/mqtt
    client_id: ${EMPTY:-}
    rate: {per_second: 20}
links:
  solo: ["oftc:&local"]
`, func(t *testing.T, c *config.Config) {
			n := c.Networks["oftc"]
			if c.Broker == nil || c.Broker.Listen != "127.0.0.1:1883" {
				t.Errorf("broker: %+v", c.Broker)
			}
			if n.Mode != "relay" || n.Section.(*irc.Config).Username != "ident" || !n.Section.(*irc.Config).TLS || n.Puppets.Template != "{id}|x" || n.Puppets.Max != 3 {
				t.Errorf("%+v %+v", n, n.Section.(*irc.Config))
			}
			// An explicit 0 is kept; a null or empty value is left out.
			if n.Section.(*irc.Config).Flood != (irc.Flood{Burst: 1, Interval: 0}) || n.Section.(*irc.Config).ReconnectMax != 2*time.Minute {
				t.Errorf("flood: %+v, reconnect_max %v", n.Section.(*irc.Config).Flood, n.Section.(*irc.Config).ReconnectMax)
			}
			if id := c.Networks["dev"].Section.(*mqtt.Config).ClientID; id != "switchboard-dev" {
				t.Errorf("client_id %q", id)
			}
			// Limits: off where written 0; opt-in on MQTT gets the
			// default burst.
			if r := n.Section.(*irc.Config).Rate; r != (config.Rate{}) {
				t.Errorf("oftc rate: %+v", r)
			}
			if r := c.Networks["dev"].Section.(*mqtt.Config).Rate; r != (config.Rate{PerSecond: 20, Burst: 10}) {
				t.Errorf("dev rate: %+v", r)
			}
		}},
		{"merge keys share settings", `
networks:
  a: &irc {type: irc, server: "h:1", nick: bot, flood: {burst: 2}}
  b: {<<: *irc, server: "other:2"}
`, func(t *testing.T, c *config.Config) {
			b := c.Networks["b"]
			if b.Type != "irc" || b.Section.(*irc.Config).Server != "other:2" || b.Section.(*irc.Config).Nick != "bot" || b.Section.(*irc.Config).Flood.Burst != 2 {
				t.Errorf("%+v %+v", b, b.Section.(*irc.Config))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.ParseEnv([]byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{
		"NICK":   "bot",
		"PORT":   "6697",
		"TLS":    "true",
		"EMPTY":  "",
		"BURST":  "7",
		"NULL":   "null",
		"TRICKY": "a: b\n- c # not a comment\nd: [e",
	}
	in := `
networks:
  libera:
    type: irc
    server: "irc.example.org:${PORT}"
    tls: ${TLS}
    nick: ${NICK}
    realname: ${UNSET:-Default Name}
    username: ${EMPTY:-ident}
    password: ${NULL}
    sasl:
      user: "$${NICK}"
      password: ${TRICKY}
    flood:
      burst: ${BURST}
    puppets: {template: "${UNSET:-{name}}@${NICK}"}
  devices: {type: mqtt, broker: "tcp://${HOST:-localhost}:1883", password: "${EMPTY}", username: u}
links:
  lobby: ["libera:#${NICK}"]
`
	c, err := config.ParseEnv([]byte(in), env)
	if err != nil {
		t.Fatal(err)
	}
	libera := c.Networks["libera"].Section.(*irc.Config)
	checks := []struct{ got, want any }{
		{libera.Server, "irc.example.org:6697"},
		{libera.TLS, true},
		{libera.Nick, "bot"},
		{libera.Realname, "Default Name"},
		{libera.Username, "ident"},
		{libera.Password, "null"},
		{libera.SASL.User, "${NICK}"},
		{libera.SASL.Password, env["TRICKY"]},
		{libera.Flood.Burst, 7},
		{c.Networks["libera"].Puppets.Template, "{name}@bot"},
		{c.Networks["devices"].Section.(*mqtt.Config).Broker, "tcp://localhost:1883"},
		{c.Networks["devices"].Section.(*mqtt.Config).Password, ""},
		{c.LinkRooms["lobby"][0], "libera:#bot"},
	}
	for i, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("check %d: got %#v, want %#v", i, ch.got, ch.want)
		}
	}
	if len(c.Networks) != 2 || len(c.LinkRooms) != 1 {
		t.Errorf("structure changed: %v", c)
	}
}

func TestEnvFromProcess(t *testing.T) {
	t.Setenv("SWITCHBOARD_TEST_NICK", "envbot")
	c, err := config.Parse([]byte(strings.Replace(valid, "nick: switchboard", "nick: ${SWITCHBOARD_TEST_NICK}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Networks["libera"].Section.(*irc.Config).Nick; got != "envbot" {
		t.Errorf("nick %q", got)
	}
}

// TestSecretsStayOut puts secrets where they cause errors and where they
// are printed, and checks that they show up in neither.
func TestSecretsStayOut(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	env := map[string]string{"SECRET": secret}
	bad := `
store: "mysql://u:${SECRET}@db/x"
networks:
  libera: {type: irc, server: "h:1", nick: bot, max_line_bytes: "${SECRET}", password: "${SECRET}\nQUIT"}
  devices:
    type: mqtt
    broker: "htp://u:${SECRET}@h:1883"
    max_payload: ${SECRET}
  other: {type: mqtt, broker: "tcp://u:${SECRET}@h:1883 x"}
`
	_, err := config.ParseEnv([]byte(bad), env)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("secret in error:\n%v", err)
	}
	for _, w := range []string{"networks.libera.max_line_bytes: want an integer (value from the environment)", "networks.libera.password: contains a line break or NUL"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}

	good := `
store: "postgres://sb:${SECRET}@db/sb?sslmode=disable&password=${SECRET}"
networks:
  libera: {type: irc, server: "h:1", nick: bot, password: "${SECRET}", sasl: {user: me, password: "${SECRET}"}}
  devices: {type: mqtt, broker: "tcp://u:${SECRET}@h:1883", username: u, password: "${SECRET}"}
`
	c, err := config.ParseEnv([]byte(good), env)
	if err != nil {
		t.Fatal(err)
	}
	var logJSON, logText bytes.Buffer
	jl := slog.New(slog.NewJSONHandler(&logJSON, nil))
	tl := slog.New(slog.NewTextHandler(&logText, nil))
	for _, l := range []*slog.Logger{jl, tl} {
		l.Info("cfg", "config", c, "value", *c, "network", c.Networks["libera"], "irc", c.Networks["libera"].Section.(*irc.Config),
			"ircv", *c.Networks["libera"].Section.(*irc.Config), "sasl", c.Networks["libera"].Section.(*irc.Config).SASL, "mqtt", c.Networks["devices"].Section.(*mqtt.Config))
	}
	outputs := map[string]string{
		"String":  c.String(),
		"%v":      fmt.Sprintf("%v %+v", c, *c),
		"network": fmt.Sprintf("%v %+v %v", c.Networks["libera"], *c.Networks["devices"], c.Networks["devices"]),
		"section": fmt.Sprintf("%v %+v %v %v", c.Networks["libera"].Section.(*irc.Config), *c.Networks["libera"].Section.(*irc.Config), c.Networks["libera"].Section.(*irc.Config).SASL, c.Networks["devices"].Section.(*mqtt.Config)),
		"json":    logJSON.String(),
		"text":    logText.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret:\n%s", name, out)
		}
	}
	if !strings.Contains(c.String(), "password: xxxxx") || !strings.Contains(c.String(), "tcp://u:xxxxx@h:1883") {
		t.Errorf("String does not show redacted values:\n%s", c)
	}
	// Printing must not redact the config itself.
	if c.Networks["libera"].Section.(*irc.Config).SASL.Password != secret || c.Networks["devices"].Section.(*mqtt.Config).Broker != "tcp://u:"+secret+"@h:1883" {
		t.Error("redaction changed the original")
	}
}

// TestSecretFieldsTagged makes sure a password field added later (a new
// network type) is tagged, since redaction is driven by the tag.
func TestSecretFieldsTagged(t *testing.T) {
	var check func(t reflect.Type)
	seen := map[reflect.Type]bool{}
	check = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Map || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			name := strings.ToLower(f.Name)
			if strings.Contains(name, "password") || strings.Contains(name, "secret") || strings.Contains(name, "token") {
				if f.Tag.Get("secret") == "" {
					t.Errorf("%s.%s looks secret but has no secret tag", typ.Name(), f.Name)
				}
			}
			check(f.Type)
		}
	}
	check(reflect.TypeFor[config.Config]())
	for _, typ := range sectionTypes() {
		check(typ)
	}
}

func TestStringRoundTrips(t *testing.T) {
	c, err := config.Load(examplePathWithEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Networks["libera"].Section.(*irc.Config).SASL.Password = "" // would come back as xxxxx
	c.Networks["libera"].Section.(*irc.Config).SASL = nil
	// Redacted secrets come back as the redaction text.
	c.Networks["jabber"].Section.(*xmpp.Config).Component.Secret = "xxxxx"
	c.Networks["jabber-relay"].Section.(*xmpp.Config).Password = "xxxxx"
	c.Networks["matrix"].Section.(*matrix.Config).ASToken = "xxxxx"
	c.Networks["matrix"].Section.(*matrix.Config).HSToken = "xxxxx"
	c.Networks["web"].Section.(*webrtc.Config).Tokens["ops"] = "xxxxx"
	c.Networks["web"].Section.(*webrtc.Config).ICEServers[1].Credential = "xxxxx"
	back, err := config.ParseEnv([]byte(c.String()), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, c)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n%s\nvs\n%s", c, back)
	}
	if s := c.Networks["libera"].String(); !strings.HasPrefix(s, "{type: irc, mode: puppet,") || !strings.Contains(s, "server: '127.0.0.1:6667'") {
		t.Errorf("Network.String() = %s", s)
	}
}

func TestDefault(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.Store != "sqlite" || c.HTTP.Listen != "127.0.0.1:8080" || c.Broker == nil || c.Broker.Listen != "127.0.0.1:1883" {
		t.Errorf("%+v", c)
	}
	n := c.Networks["local"]
	if len(c.Networks) != 2 || n.Type != "mqtt" || n.Section.(*mqtt.Config).Broker != "tcp://127.0.0.1:1883" || n.Section.(*mqtt.Config).ClientID != "switchboard-local" || n.Section.(*mqtt.Config).MaxPayload != 65536 || n.Mode != "puppet" {
		t.Errorf("local network: %+v %+v", n, n.Section.(*mqtt.Config))
	}
	links, err := c.Links()
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Networks["web"]; w == nil || w.Type != "webrtc" || !w.Section.(*webrtc.Config).LoopbackCandidates || w.Section.(*webrtc.Config).MaxMessage != 16384 {
		t.Errorf("web network: %+v", w)
	}
	want := map[string][]bridge.RoomAddr{"lobby": {{Network: "local", Room: "switchboard/lobby"}, {Network: "web", Room: "lobby"}}}
	if !reflect.DeepEqual(links, want) {
		t.Errorf("links %v", links)
	}
	// Each call is a fresh value that callers may change.
	c.Networks["local"].Section.(*mqtt.Config).Broker = "changed"
	c.LinkRooms["lobby"][0] = "changed"
	if d := config.Default(); d.Networks["local"].Section.(*mqtt.Config).Broker == "changed" || d.LinkRooms["lobby"][0] == "changed" {
		t.Error("Default shares state between calls")
	}
	// The defaults written as a file parse to the same thing.
	back, err := config.ParseEnv([]byte(config.Default().String()), nil)
	if err != nil || !reflect.DeepEqual(back, config.Default()) {
		t.Errorf("Default as YAML: %v\n%s", err, config.Default())
	}
}

func TestValidateAfterChange(t *testing.T) {
	c := config.Default()
	c.LinkRooms["lobby"] = append(c.LinkRooms["lobby"], "local:switchboard/#")
	err := c.Validate()
	if err == nil || err.Error() != `links.lobby[2]: invalid mqtt room "switchboard/#": an MQTT topic root contains no + or # wildcard` {
		t.Errorf("Validate: %v", err)
	}
}

func TestLinksReportsBadAddresses(t *testing.T) {
	c := &config.Config{LinkRooms: map[string][]string{"a": {"x:#a", "nocolon"}, "b": {"y:z"}}}
	if _, err := c.Links(); err == nil || err.Error() != `links.a[1]: room address "nocolon": want network:room` {
		t.Errorf("Links: %v", err)
	}
}

func TestNetworkUnmarshalYAML(t *testing.T) {
	var n config.Network
	err := yaml.Unmarshal([]byte("{type: mqtt, broker: 'tcp://h:1', max_payload: 10}"), &n)
	if err != nil || n.Type != "mqtt" || n.Section.(*mqtt.Config) == nil || n.Section.(*mqtt.Config).MaxPayload != 10 {
		t.Errorf("%v %+v", err, n)
	}
	err = yaml.Unmarshal([]byte("{type: mqtt, brokr: x, nick: y}"), &n)
	if err == nil || err.Error() != "brokr: unknown key for a network of type mqtt\nnick: unknown key for a network of type mqtt" {
		t.Errorf("%v", err)
	}
}

// TestLoad reads through the file system, missing file included.
func TestLoad(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte(valid), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Error(err)
	}
	if _, err := config.Load(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// examplePathWithEnv sets the variables the example needs; tests using it
// cannot run in parallel.
func examplePathWithEnv(t *testing.T) string {
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
	return examplePath
}

func TestExampleIsValid(t *testing.T) {
	c, err := config.Load(examplePathWithEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range map[string]string{"libera": "irc", "devices": "mqtt"} {
		if n := c.Networks[name]; n == nil || n.Type != typ {
			t.Errorf("network %s: %+v", name, n)
		}
	}
	if got := c.Networks["libera"].Section.(*irc.Config).SASL.Password; got != exampleEnv["LIBERA_SASL_PASSWORD"] {
		t.Errorf("sasl password %q", got)
	}
	if _, err := c.Links(); err != nil || len(c.LinkRooms["lobby"]) != 2 {
		t.Errorf("links: %v %v", err, c.LinkRooms)
	}
}

// sectionTypes lists each network type's section struct.
func sectionTypes() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, t := range config.Types() {
		m[t.Name] = reflect.TypeOf(t.Config()).Elem()
	}
	return m
}

// join appends a map key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structKeys lists the key paths a struct accepts, from its yaml tags; a
// map level is written "*". It is written apart from the decoder's own
// field table so that a mistake there is not repeated here.
func structKeys(typ reflect.Type, prefix string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Duration]() {
		return nil
	}
	var keys []string
	for f := range typ.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		path := prefix + tag
		keys = append(keys, path)
		ft := f.Type
		if ft.Kind() == reflect.Map {
			path += ".*"
			ft = ft.Elem()
		}
		if ft == reflect.TypeFor[*config.Network]() || ft == reflect.TypeFor[config.Network]() {
			continue // its keys depend on the type; see exampleWant
		}
		keys = append(keys, structKeys(ft, path+".")...)
	}
	return keys
}

// exampleWant is every key path the example must show. A network's keys
// appear as networks.<type>.key: the common ones under any type, a
// section's under a network of that type.
func exampleWant() []string {
	want := structKeys(reflect.TypeFor[config.Config](), "")
	for _, k := range structKeys(reflect.TypeFor[config.Network](), "") {
		want = append(want, "networks.<any>."+k)
	}
	for typ, st := range sectionTypes() {
		want = append(want, "networks.<"+typ+">") // a network of each type
		for _, k := range structKeys(st, "") {
			want = append(want, "networks.<"+typ+">."+k)
		}
	}
	slices.Sort(want)
	return want
}

// exampleKeys lists the key paths present in the example (in the form of
// exampleWant), and the keys that have no comment (as written).
func exampleKeys(t *testing.T) (keys map[string]bool, undocumented []string) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	keys = map[string]bool{}
	// pattern is the path as exampleWant writes it, file the path as
	// written; check is false on the second walk of a network.
	var walk func(n *yaml.Node, pattern, file string, mapLevel, check bool)
	walk = func(n *yaml.Node, pattern, file string, mapLevel, check bool) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f := join(file, k.Value)
			if check && k.HeadComment == "" && k.LineComment == "" && v.LineComment == "" {
				undocumented = append(undocumented, f)
			}
			switch {
			case pattern == "networks":
				// A network: its keys count under its type and under <any>.
				typ := ""
				for j := 0; j+1 < len(v.Content); j += 2 {
					if v.Content[j].Value == "type" {
						typ = v.Content[j+1].Value
					}
				}
				keys["networks.<"+typ+">"] = true
				walk(v, "networks.<"+typ+">", f, false, check)
				walk(v, "networks.<any>", f, false, false)
			case mapLevel:
				keys[join(pattern, "*")] = true
				walk(v, join(pattern, "*"), f, false, check)
			default:
				p := join(pattern, k.Value)
				keys[p] = true
				walk(v, p, f, p == "links" || p == "link_options" || p == "people" || p == "people.*.accounts", check)
			}
		}
	}
	walk(doc.Content[0], "", "", false, true)
	return keys, undocumented
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	keys, undocumented := exampleKeys(t)
	for _, k := range exampleWant() {
		if !keys[k] {
			t.Errorf("%s: the structs accept this key but %s does not show it", k, examplePath)
		}
	}
	for _, k := range undocumented {
		t.Errorf("%s: no comment in %s", k, examplePath)
	}
	if len(exampleWant()) < 30 {
		t.Errorf("only %d keys found by reflection; is the walk broken?", len(exampleWant()))
	}
}

func TestIgnoreLists(t *testing.T) {
	c, err := config.ParseEnv([]byte(strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    ignore: [\"*bot*\"]", 1)+
		"link_options: {lobby: {ignore: [\"sensor-*\"]}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	nets, links := c.IgnoreLists()
	want := map[string]mapping.NetworkIgnore{
		"libera":  {Type: "irc", Patterns: append(slices.Clone(mapping.IRCServices), "*bot*")},
		"devices": {Type: "mqtt"},
	}
	if !reflect.DeepEqual(nets, want) {
		t.Errorf("networks' lists %v, want %v", nets, want)
	}
	if !reflect.DeepEqual(links, map[string][]string{"lobby": {"sensor-*"}}) {
		t.Errorf("links' lists %v", links)
	}
	// The services' defaults go with a switch, the list staying.
	c, err = config.ParseEnv([]byte(strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    ignore: [\"*bot*\"]\n    ignore_services: false", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if nets, _ := c.IgnoreLists(); !slices.Equal(nets["libera"].Patterns, []string{"*bot*"}) {
		t.Errorf("with ignore_services: false, libera ignores %q", nets["libera"].Patterns)
	}
}

func TestAdminsAndAPIToken(t *testing.T) {
	c := config.Default()
	c.Admins = []string{"web:ops", "matrix:@ops:example.org", "nocolon", "libera:*!*@x", "local:"}
	c.HTTP.APIToken = "short"
	err := c.Validate()
	want := []string{
		"http.api_token: too short: want at least 16 characters",
		`admins[2]: want network:identity, got "nocolon"`,
		`admins[3]: "libera" is neither a configured network nor a network type`,
		`admins[4]: want network:identity, got "local:"`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "admins[0]") || strings.Contains(err.Error(), "admins[1]") {
		t.Errorf("a network name and a network type are both fine:\n%v", err)
	}
	if strings.Contains(err.Error(), "short\"") || strings.Contains(err.Error(), `"short`) {
		t.Errorf("the token is repeated in the error:\n%v", err)
	}
}

func TestCheckLinks(t *testing.T) {
	c := config.Default()
	err := c.CheckLinks(map[string][]string{"new": {"web:ok", "nowhere:x", "local:bad/#"}, "bad name": {"web:y"}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`links.new[1]: unknown network "nowhere"`, `links.new[2]: invalid mqtt room "bad/#"`, `invalid link name "bad name"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if err := c.CheckLinks(map[string][]string{"lobby": {"web:lobby"}, "other": {"web:lobby"}}); err == nil || !strings.Contains(err.Error(), "already in link") {
		t.Errorf("a room in two links: %v", err)
	}
	if err := c.CheckLinks(map[string][]string{"lobby": {"web:lobby", "local:switchboard/lobby"}, "two": {"web:two"}}); err != nil {
		t.Errorf("valid links: %v", err)
	}
}

func TestSQLiteSynchronous(t *testing.T) {
	c, err := config.ParseEnv([]byte(valid+"sqlite_synchronous: normal\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SQLiteSynchronous != "normal" || c.StoreDSN() != "sqlite?_synchronous=NORMAL" {
		t.Errorf("sqlite_synchronous %q, store DSN %q", c.SQLiteSynchronous, c.StoreDSN())
	}
	c, err = config.ParseEnv([]byte(valid+"store: postgres://sb@db/sb\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.StoreDSN() != "postgres://sb@db/sb" {
		t.Errorf("store DSN %q", c.StoreDSN())
	}
}

func TestPublicURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"https://bridge.example.org":       "https://bridge.example.org",
		"https://bridge.example.org/":      "https://bridge.example.org",
		"http://127.0.0.1:8080/sb//":       "http://127.0.0.1:8080/sb",
		"https://example.org/switchboard/": "https://example.org/switchboard",
	} {
		c, err := config.ParseEnv([]byte(valid+"\nhttp: {public_url: \""+in+"\"}\n"), nil)
		if err != nil {
			t.Errorf("public_url %q: %v", in, err)
			continue
		}
		if c.HTTP.PublicURL != want {
			t.Errorf("public_url %q became %q, want %q", in, c.HTTP.PublicURL, want)
		}
	}
	for _, bad := range []string{"bridge.example.org", "ftp://bridge.example.org", "https://", "https://user:pw@bridge.example.org", "https://bridge.example.org/?x=1", "https://bridge.example.org/#top", "/media"} {
		_, err := config.ParseEnv([]byte(valid+"\nhttp: {public_url: \""+bad+"\"}\n"), nil)
		if err == nil || !strings.Contains(err.Error(), "http.public_url: ") {
			t.Errorf("public_url %q: want an error naming http.public_url, got %v", bad, err)
		}
	}
}

func TestRetention(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		yaml string
		want config.Retention
	}{
		{"", config.Retention{Messages: 90 * day, IDs: 365 * day, Failed: 30 * day}},
		{"retention: {messages: 7d, failed: 12h}", config.Retention{Messages: 7 * day, IDs: 365 * day, Failed: 12 * time.Hour}},
		// Keeping the contents keeps the ids, unless told otherwise.
		{"retention: {messages: 0}", config.Retention{Failed: 30 * day}},
		{"retention: {messages: 2s, ids: 3s, failed: 0}", config.Retention{Messages: 2 * time.Second, IDs: 3 * time.Second}},
	} {
		got, err := config.ParseEnv([]byte(valid+c.yaml+"\n"), nil)
		if err != nil {
			t.Errorf("%q: %v", c.yaml, err)
			continue
		}
		if got.Retention != c.want {
			t.Errorf("%q: %+v, want %+v", c.yaml, got.Retention, c.want)
		}
	}
	for yaml, want := range map[string]string{
		"retention: {messages: -1h}":          "retention.messages: must not be negative, got -1h0m0s",
		"retention: {messages: 90}":           "retention.messages: want a duration such as 30s, 5m, 1h30m or 90d, got \"90\"",
		"retention: {failed: 1.5d}":           "retention.failed: want a duration such as 30s, 5m, 1h30m or 90d, got \"1.5d\"",
		"retention: {messages: 0, ids: 30d}":  "retention.ids: needs retention.messages: an event's contents go before its ids",
		"retention: {messages: 30d, ids: 7d}": "retention.ids: must be at least retention.messages (720h0m0s), got 168h0m0s",
	} {
		_, err := config.ParseEnv([]byte(valid+yaml+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
}
