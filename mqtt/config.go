package mqtt

import (
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/config"
)

// Config is an MQTT network's keys (type: mqtt): a broker, and the
// client Switchboard is on it.
type Config struct {
	Broker   string `yaml:"broker" secret:"url"` // tcp://host:port, ssl://host:port
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// MaxPayload drops inbound payloads larger than this many bytes.
	MaxPayload int `yaml:"max_payload"`
	// Rate limits each sender per room (see config.Rate); config
	// validates it.
	Rate config.Rate `yaml:"rate"`
}

// mqttSchemes are the broker URL schemes the MQTT client (paho) dials.
var mqttSchemes = []string{"mqtt", "mqtts", "ssl", "tcp", "tls", "ws", "wss"}

var (
	_ config.Section     = (*Config)(nil)
	_ config.RateLimited = (*Config)(nil)
)

func (c Config) String() string       { return config.Redacted(&c) }
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c *Config) SenderRate() *config.Rate { return &c.Rate }

func (c *Config) SetDefaults(name string, _ *config.Network, given func(string) bool) {
	// One client id per network: a broker disconnects the older of two
	// clients sharing an id.
	config.SetDefault(&c.ClientID, "switchboard-"+name)
	config.SetDefault(&c.MaxPayload, DefaultMaxPayload, given("max_payload"))
	// Devices are not limited unless the file says so: a burst of
	// telemetry is legitimate.
	c.Rate.SetDefaults(given, false)
}

func (c *Config) Validate(p *config.Problems, _ *config.Network) {
	if err := checkBrokerURL(c.Broker); err != nil {
		p.Add("broker", "%v", err)
	}
	if c.Password != "" && c.Username == "" {
		// MQTT 3.1.1 has no password without a user name.
		p.Add("username", "required when password is set")
	}
	if c.MaxPayload <= 0 {
		p.Add("max_payload", "must be positive, got %d", c.MaxPayload)
	}
}

func (*Config) CheckRoom(room string) error {
	switch {
	case strings.ContainsAny(room, "+#"):
		// Rooms are topic roots that the adapter extends; wildcards would
		// make one room match another's messages.
		return errors.New("an MQTT topic root contains no + or # wildcard")
	case strings.HasPrefix(room, "/") || strings.HasSuffix(room, "/"):
		return errors.New("an MQTT topic root neither starts nor ends with /")
	case strings.HasPrefix(room, "$"):
		return errors.New("an MQTT topic root starting with $ is reserved for the broker")
	case !utf8.ValidString(room) || strings.ContainsFunc(room, unicode.IsControl):
		// Brokers such as Mosquitto disconnect a client that publishes to
		// a topic with control characters (NUL included).
		return errors.New("an MQTT topic root is UTF-8 without control characters")
	}
	return nil
}

// checkBrokerURL's messages never quote the URL: it may carry a password.
func checkBrokerURL(s string) error {
	if s == "" {
		return errors.New("required (for example tcp://127.0.0.1:1883)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL (want scheme://host:port)")
	}
	scheme := strings.ToLower(u.Scheme)
	if !slices.Contains(mqttSchemes, scheme) {
		return errors.New("scheme must be one of " + strings.Join(mqttSchemes, ", ") + " (want scheme://host:port)")
	}
	if u.Hostname() == "" {
		return errors.New("no host (want " + scheme + "://host:port)")
	}
	if p := u.Port(); p != "" {
		if err := config.CheckPort(p, false); err != nil {
			return err
		}
	}
	return nil
}
