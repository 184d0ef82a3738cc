package config

import "time"

// CatchUp bounds what a network's adapter bridges of the history a room
// kept while Switchboard was away (IRC join playback, XMPP MAM): the
// latest MaxMessages lines, none older than MaxAge. Either 0 turns
// catch-up off. The networks that catch up embed it as catch_up.
type CatchUp struct {
	MaxMessages int           `yaml:"max_messages"`
	MaxAge      time.Duration `yaml:"max_age"`
}

const (
	DefaultCatchUpMessages = 500
	DefaultCatchUpAge      = 24 * time.Hour
	// MaxCatchUpMessages bounds one catch-up: it is bridged at once,
	// exempt from the senders' rate limits.
	MaxCatchUpMessages = 10000
)

// On reports whether catch-up is on.
func (c CatchUp) On() bool { return c.MaxMessages > 0 && c.MaxAge > 0 }

// SetDefaults fills what the network's catch_up left out.
func (c *CatchUp) SetDefaults(given func(string) bool) {
	SetDefault(&c.MaxMessages, DefaultCatchUpMessages, given("catch_up.max_messages"))
	SetDefault(&c.MaxAge, DefaultCatchUpAge, given("catch_up.max_age"))
}

// Validate checks the network's catch_up.
func (c *CatchUp) Validate(p *Problems) {
	if c.MaxMessages < 0 || c.MaxMessages > MaxCatchUpMessages {
		p.Add("catch_up.max_messages", "want 0 (off) to %d, got %d", MaxCatchUpMessages, c.MaxMessages)
	}
	if c.MaxAge < 0 {
		p.Add("catch_up.max_age", "must not be negative, got %v (0 turns catch-up off)", c.MaxAge)
	}
}
