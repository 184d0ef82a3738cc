package matrix

import (
	"net/http"
)

// maxInFlight bounds the requests the adapter has under way at its
// homeserver at once. The router delivers to every room in a lane of its
// own, so rooms go out in parallel; without a bound, a hundred busy rooms
// would be a hundred requests (and connections) at once, which a
// homeserver answers with 429s or slowness for everybody. Eight keeps a
// few rooms' sends overlapping the homeserver's round trip (10 rooms at
// 10 msg/s need about one request at a time at Dendrite's ~20 ms a send)
// and leaves it room to breathe.
const maxInFlight = 8

// limitTransport lets at most cap(slots) requests wait for their answer
// at once; the others wait for a slot (or their context to end). A
// request rate limited (429) gives its slot back while it waits out the
// Retry-After (see retry): one room's wait stalls neither the others nor
// the slots.
type limitTransport struct {
	base  http.RoundTripper
	slots chan struct{}
}

// limitRequests wraps c's transport so that c has at most n requests in
// flight, keeping that many connections open for reuse.
func limitRequests(c *http.Client, n int) {
	base := c.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = n
		base = t
	}
	c.Transport = &limitTransport{base: base, slots: make(chan struct{}, n)}
}

func (l *limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case l.slots <- struct{}{}:
	case <-r.Context().Done():
		if r.Body != nil {
			r.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, r.Context().Err()
	}
	// The slot is the answer's wait: given back once the headers are in
	// (mautrix reads the small JSON bodies right away).
	defer func() { <-l.slots }()
	return l.base.RoundTrip(r)
}
