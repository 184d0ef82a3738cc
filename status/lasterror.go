package status

import (
	"context"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// netErrors remembers each network's latest problem, for /api/status and
// /status. The adapters need not know: they log with a "network" attribute
// (adapters.New hands them log.With("network", name)), so a wrapper around
// the service's slog.Handler sees their warnings and errors go by.
type netErrors struct {
	mu   sync.Mutex
	last map[string]LastError
}

// LastError is a network's latest record at Warn level or above. Secrets
// are never logged, so the message is safe to show; it is capped all the
// same, since it ends up on a web page.
type LastError struct {
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// maxErrorLen caps a shown message, in bytes (cut at a rune boundary).
const maxErrorLen = 500

func newNetErrors() *netErrors { return &netErrors{last: map[string]LastError{}} }

// get returns the latest problem of network, if it had one.
func (e *netErrors) get(network string) (LastError, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	le, ok := e.last[network]
	return le, ok
}

func (e *netErrors) set(network string, le LastError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.last[network]; ok && old.Time.After(le.Time) {
		return // records of two goroutines can arrive out of order
	}
	e.last[network] = le
}

// handler wraps next so that it records the networks' problems.
func (e *netErrors) handler(next slog.Handler) slog.Handler {
	return &errorHandler{next: next, errs: e}
}

// errorHandler passes every record on to next and remembers those at Warn
// or above that name a network. The network is the first "network"
// attribute added outside any group with WithAttrs (the adapter's own
// logger) or else one of the record's own outside any group (a log line
// about a network, such as "stop network"); a "network" attribute inside a
// group, or a later one, is about something else (say, a sender's
// network). The error is the record's "err" attribute, or one added with
// WithAttrs, in or out of a group.
type errorHandler struct {
	next    slog.Handler
	errs    *netErrors
	network string // from WithAttrs
	err     string // from WithAttrs
	grouped bool   // after WithGroup, attributes are no longer top-level
}

// Enabled lets warnings through even when the log level hides them, so
// that /status shows them all the same.
func (h *errorHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *errorHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.record(r)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *errorHandler) record(r slog.Record) {
	network, errText := h.network, h.err
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "network":
			if network == "" && !h.grouped {
				network = a.Value.Resolve().String()
			}
		case "err":
			errText = a.Value.Resolve().String()
		}
		return true
	})
	if network == "" {
		return
	}
	msg := r.Message
	if errText != "" {
		msg += ": " + errText
	}
	at := r.Time
	if at.IsZero() {
		at = time.Now()
	}
	h.errs.set(network, LastError{Message: truncate(msg, maxErrorLen), Time: at})
}

func (h *errorHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	for _, a := range attrs {
		switch a.Key {
		case "network":
			if c.network == "" && !c.grouped {
				c.network = a.Value.Resolve().String()
			}
		case "err":
			c.err = a.Value.Resolve().String()
		}
	}
	return &c
}

func (h *errorHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h // as slog.Handler says: the same handler
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
