package config

import "math"

// Rate limits what one sender of a network may send into one room (per
// origin room and sender, before anything is stored): PerSecond messages
// a second on average, Burst at once. PerSecond 0 turns the limit off.
type Rate struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// The default limit, where a network type has one: a person types well
// under a line a second for long, and a burst of 10 lets a short paste
// (on IRC, one message per line) or a quick exchange through whole. A
// flood is cut after 10 lines, then passes one line a second.
const (
	defaultRatePerSecond = 1
	defaultRateBurst     = 10
)

// SenderRate is the limit on each sender of the network per room, nil
// for a type without one: the web page limits each peer itself
// (WebRTC.Rate, over all its rooms).
func (n *Network) SenderRate() *Rate {
	switch {
	case n.Type == "irc" && n.IRC != nil:
		return &n.IRC.Rate
	case n.Type == "xmpp" && n.XMPP != nil:
		return &n.XMPP.Rate
	case n.Type == "matrix" && n.Matrix != nil:
		return &n.Matrix.Rate
	case n.Type == "mqtt" && n.MQTT != nil:
		return &n.MQTT.Rate
	}
	return nil
}

// setDefaults: people's networks are limited unless the file says
// otherwise. MQTT devices are not: a burst of telemetry is legitimate, so
// the limit is opt-in there.
func (r *Rate) setDefaults(typ string, given func(key string) bool) {
	if typ != "mqtt" {
		setDefault(&r.PerSecond, defaultRatePerSecond, given("rate.per_second"))
	}
	if r.PerSecond > 0 {
		setDefault(&r.Burst, defaultRateBurst, given("rate.burst"))
	}
}

func (r Rate) validate(errs *errorList, path string) {
	if r.PerSecond < 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) {
		errs.add(join(path, "rate.per_second"), "must be a number of at least 0 (0: no limit), got %v", r.PerSecond)
	}
	if r.Burst < 0 || (r.PerSecond > 0 && r.Burst < 1) {
		errs.add(join(path, "rate.burst"), "must be at least 1, got %d", r.Burst)
	}
}
