package testenv

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// CountingProxy is an HTTP reverse proxy in front of a real server that
// counts the requests passing through it by method and path shape (ids
// replaced by "*"): what a client asks of the server, e.g. the requests
// an appservice makes of its homeserver per relayed message.
type CountingProxy struct {
	URL string // http://127.0.0.1:PORT, for clients

	mu       sync.Mutex
	counts   map[string]int
	limit    map[string]int // requests still to answer 429, by key
	limited  int            // requests answered 429
	inFlight int
	maxIn    int
}

// NewCountingProxy listens on a free loopback port and forwards to
// upstream (a base URL), until the test ends.
func NewCountingProxy(t testing.TB, upstream string) *CountingProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("counting proxy: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("counting proxy: %v", err)
	}
	p := &CountingProxy{URL: "http://" + l.Addr().String(), counts: map[string]int{}, limit: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + pathShape(r.URL.Path)
		p.mu.Lock()
		p.counts[key]++
		refuse := p.limit[key] > 0
		if refuse {
			p.limit[key]--
			p.limited++
		}
		p.inFlight++
		p.maxIn = max(p.maxIn, p.inFlight)
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.inFlight--
			p.mu.Unlock()
		}()
		if refuse {
			// As Synapse and Dendrite refuse: the header and the
			// body's retry_after_ms say the same.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":1000}`)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// pathShape replaces the ids in a request path (room, user and event ids,
// aliases, transaction ids) by "*", so that requests of one kind count
// together.
func pathShape(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s == "" {
			continue
		}
		switch {
		case strings.ContainsAny(s[:1], "!@$#") || strings.Contains(s, ":"):
			segs[i] = "*"
		case i > 0 && segs[i-1] == "transactions":
			segs[i] = "*"
		case i > 1 && (segs[i-2] == "send" || segs[i-2] == "redact"):
			segs[i] = "*" // the transaction id after the event type or event
		}
	}
	return strings.Join(segs, "/")
}

// Counts is a copy of the counts so far.
func (p *CountingProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// Total is the number of requests so far.
func (p *CountingProxy) Total() int {
	n := 0
	for _, c := range p.Counts() {
		n += c
	}
	return n
}

// Since lists the requests made after the counts before were taken, per
// message of n, one "METHOD /path: x.xx" a line, and their total per
// message.
func (p *CountingProxy) Since(before map[string]int, n int) (string, float64) {
	now := p.Counts()
	var b strings.Builder
	total := 0
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if d := now[k] - before[k]; d > 0 {
			total += d
			fmt.Fprintf(&b, "  %s: %.2f/msg\n", k, float64(d)/float64(n))
		}
	}
	return b.String(), float64(total) / float64(n)
}

// RateLimit makes the proxy answer the next n requests of kind key (as
// Counts names them, e.g. "PUT /_matrix/client/v3/rooms/*/send/m.room.message/*")
// with 429 M_LIMIT_EXCEEDED and Retry-After: 1, without passing them on:
// a homeserver rate limiting for a while.
func (p *CountingProxy) RateLimit(key string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit[key] += n
}

// Limited is how many requests the proxy answered 429 so far.
func (p *CountingProxy) Limited() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limited
}

// MaxInFlight is the most requests the proxy had under way at once.
func (p *CountingProxy) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxIn
}
