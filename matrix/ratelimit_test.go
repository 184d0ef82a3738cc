package matrix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

const sendKey = "PUT /_matrix/client/v3/rooms/*/send/m.room.message/*"

// Rooms delivered in parallel (a lane each, as the router runs them)
// through a homeserver that answers 429 for a while: each refused send
// waits out its Retry-After and goes again, so every message of every
// room arrives, once, in its room's order; and the adapter never has
// more than maxInFlight requests at the homeserver.
func TestRoomsInParallelUnderRateLimit(t *testing.T) {
	s := newServer(t)
	proxy := testenv.NewCountingProxy(t, s.URL)
	s.network.Section.(*Config).Homeserver = proxy.URL
	alice := s.Client(t, "alice")
	const rooms, perRoom, refused = 24, 8, 20
	var rids []id.RoomID
	var addrs []string
	for range rooms {
		rid := alice.NewRoom(true, "")
		rids = append(rids, rid)
		addrs = append(addrs, string(rid))
	}
	a, _ := startAdapter(t, s, addrs...)
	carol := foreign("carol", "Carol")
	for _, rid := range rids {
		say(t, a, rid, carol, "carol here") // the ghost joins each room
	}
	proxy.RateLimit(sendKey, refused)

	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, rooms)
	start := time.Now()
	for r, rid := range rids {
		wg.Go(func() {
			for i := range perRoom {
				m := &bridge.Message{Header: header(carol), Text: fmt.Sprintf("room %d message %d", r, i)}
				// As the router's outbox: again until delivered.
				for {
					_, err := a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
					if err == nil {
						break
					}
					if errors.Is(err, bridge.ErrPermanent) || ctx.Err() != nil {
						errs <- fmt.Errorf("room %d message %d: %w", r, i, err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%d rooms × %d messages, %d refused: %v, at most %d requests at once", rooms, perRoom, refused, took, proxy.MaxInFlight())
	if got := proxy.Limited(); got != refused {
		t.Fatalf("the proxy refused %d sends, want %d", got, refused)
	}
	// Each refusal asks for a second; waited out one after another (a
	// global stall) they would take 20 s, in parallel a few.
	if took > refused*time.Second/2 {
		t.Errorf("delivery took %v: the 429 waits stalled other rooms", took)
	}
	if got := proxy.MaxInFlight(); got > maxInFlight {
		t.Errorf("%d requests at the homeserver at once, want at most %d", got, maxInFlight)
	}

	for r, rid := range rids {
		waitEvent(t, alice, "the last message", bodyIs(rid, fmt.Sprintf("room %d message %d", r, perRoom-1)))
	}
	for r, rid := range rids {
		var got []string
		for _, e := range alice.Events() {
			if e.RoomID == rid && e.Type == event.EventMessage && e.Content.AsMessage().Body != "carol here" {
				got = append(got, e.Content.AsMessage().Body)
			}
		}
		var want []string
		for i := range perRoom {
			want = append(want, fmt.Sprintf("room %d message %d", r, i))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("room %d got\n%q\nwant\n%q", r, got, want)
		}
	}
}

// How long a 429 asks to wait: Retry-After (seconds or an HTTP date) or
// else the body's retry_after_ms, a second when neither says, five
// minutes at most.
func TestRateLimitedWait(t *testing.T) {
	limited := func(header string, body map[string]any) error {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
		if header != "" {
			resp.Header.Set("Retry-After", header)
		}
		return mautrix.HTTPError{Response: resp, RespError: &mautrix.RespError{ErrCode: "M_LIMIT_EXCEEDED", ExtraData: body}}
	}
	for _, c := range []struct {
		name string
		err  error
		wait time.Duration
		ok   bool
	}{
		{"header", limited("2", nil), 2 * time.Second, true},
		{"header over body", limited("3", map[string]any{"retry_after_ms": 1500.0}), 3 * time.Second, true},
		{"header not a number", limited("soon", map[string]any{"retry_after_ms": 1500.0}), 1500 * time.Millisecond, true},
		{"body", limited("", map[string]any{"retry_after_ms": 1500.0}), 1500 * time.Millisecond, true},
		{"neither", limited("", nil), time.Second, true},
		{"too long", limited("86400", nil), 5 * time.Minute, true},
		{"forbidden", mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusForbidden}, RespError: &mautrix.RespError{ErrCode: "M_FORBIDDEN"}}, 0, false},
		{"other error", errors.New("connection refused"), 0, false},
		{"none", nil, 0, false},
	} {
		wait, ok := rateLimited(c.err)
		if wait != c.wait || ok != c.ok {
			t.Errorf("%s: rateLimited = %v, %v; want %v, %v", c.name, wait, ok, c.wait, c.ok)
		}
	}
}

// Retry-After as an HTTP date: the wait is until then; a date already
// past, or anything else unreadable, is as if the header were absent.
func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 12, 4, 23, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		header string
		wait   time.Duration
		ok     bool
	}{
		{"Fri, 04 Dec 2026 23:30:07 GMT", 7 * time.Second, true}, // IMF-fixdate
		{"Friday, 04-Dec-26 23:31:00 GMT", time.Minute, true},    // RFC 850
		{"Fri Dec  4 23:30:02 2026", 2 * time.Second, true},      // asctime
		{"Fri, 04 Dec 2026 23:29:00 GMT", 0, false},              // past
		{"Fri, 04 Dec 2026 23:30:00 GMT", 0, false},              // now
		{"2026-12-04T23:30:07Z", 0, false},                       // not an HTTP date
		{"", 0, false},
		{"0", 0, false},
		{"-5", 0, false},
	} {
		wait, ok := retryAfter(c.header, now)
		if wait != c.wait || ok != c.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", c.header, wait, ok, c.wait, c.ok)
		}
	}
	// Through rateLimited, with the real clock: a date a minute ahead
	// waits about a minute, not the body's 1.5 s.
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
	resp.Header.Set("Retry-After", time.Now().Add(time.Minute).UTC().Format(http.TimeFormat))
	wait, ok := rateLimited(mautrix.HTTPError{Response: resp, RespError: &mautrix.RespError{ErrCode: "M_LIMIT_EXCEEDED", ExtraData: map[string]any{"retry_after_ms": 1500.0}}})
	if !ok || wait < 58*time.Second || wait > time.Minute {
		t.Errorf("rateLimited with Retry-After a minute ahead = %v, %v", wait, ok)
	}
}
