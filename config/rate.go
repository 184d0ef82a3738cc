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
// for a type without one (RateLimited): the web page limits each peer
// itself, over all its rooms.
func (n *Network) SenderRate() *Rate {
	if r, ok := n.Section.(RateLimited); ok {
		return r.SenderRate()
	}
	return nil
}

// SetDefaults fills the limit's unset keys for a Section's SetDefaults:
// on says whether the type limits senders unless the file says otherwise.
// People's networks are limited; MQTT devices are not, as a burst of
// telemetry is legitimate, so the limit is opt-in there.
func (r *Rate) SetDefaults(given func(key string) bool, on bool) {
	if on {
		SetDefault(&r.PerSecond, defaultRatePerSecond, given("rate.per_second"))
	}
	if r.PerSecond > 0 {
		SetDefault(&r.Burst, defaultRateBurst, given("rate.burst"))
	}
}

// validate checks the rate keys of a RateLimited section.
func (r Rate) validate(p *Problems) {
	if r.PerSecond < 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) {
		p.Add("rate.per_second", "must be a number of at least 0 (0: no limit), got %v", r.PerSecond)
	}
	if r.Burst < 0 || (r.PerSecond > 0 && r.Burst < 1) {
		p.Add("rate.burst", "must be at least 1, got %d", r.Burst)
	}
}
