package config

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

const defaultMQTTMaxPayload = 65536

// mqttSchemes are the broker URL schemes the MQTT client (paho) dials.
var mqttSchemes = []string{"mqtt", "mqtts", "ssl", "tcp", "tls", "ws", "wss"}

func (c *MQTT) setDefaults(name string, _ *Network, given func(string) bool) {
	// One client id per network: a broker disconnects the older of two
	// clients sharing an id.
	setDefault(&c.ClientID, "switchboard-"+name)
	setDefault(&c.MaxPayload, defaultMQTTMaxPayload, given("max_payload"))
}

func (c *MQTT) validate(errs *errorList, path string, _ *Network) {
	if err := checkBrokerURL(c.Broker); err != nil {
		errs.add(join(path, "broker"), "%v", err)
	}
	if c.Password != "" && c.Username == "" {
		// MQTT 3.1.1 has no password without a user name.
		errs.add(join(path, "username"), "required when password is set")
	}
	if c.MaxPayload <= 0 {
		errs.add(join(path, "max_payload"), "must be positive, got %d", c.MaxPayload)
	}
}

func (*MQTT) checkRoom(room string) error {
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
		if err := checkPort(p, false); err != nil {
			return err
		}
	}
	return nil
}
