package matrix

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// maxTransaction bounds a transaction's body.
const maxTransaction = 16 << 20

// A mux serves the appservice API of every matrix network registered on
// it: the paths are fixed by the spec, so the hs_token the homeserver
// presents tells the networks apart.
var (
	dispatchMu  sync.Mutex
	dispatchers = map[*http.ServeMux]*dispatcher{}
)

type dispatcher struct {
	mu       sync.Mutex
	adapters []*Adapter // serving the appservice API
	media    []*Adapter // serving media links
}

// register serves a's media links on mux, and its appservice API when
// appservice is set.
func register(mux *http.ServeMux, a *Adapter, appservice bool) {
	dispatchMu.Lock()
	defer dispatchMu.Unlock()
	d := dispatchers[mux]
	if d == nil {
		d = &dispatcher{}
		dispatchers[mux] = d
		mux.HandleFunc("PUT /_matrix/app/v1/transactions/{txnID}", d.serve((*Adapter).putTransaction))
		mux.HandleFunc("GET /_matrix/app/v1/users/{userID}", d.serve((*Adapter).getUser))
		mux.HandleFunc("GET /_matrix/app/v1/rooms/{roomAlias}", d.serve((*Adapter).getRoom))
		mux.HandleFunc("POST /_matrix/app/v1/ping", d.serve(func(*Adapter, http.ResponseWriter, *http.Request) {
			writeJSON(http.StatusOK, struct{}{}, nil)
		}))
		// GET patterns take HEAD too; other methods get a 405.
		mux.HandleFunc("GET "+mediaPath+"{network}/{sig}/{server}/{mediaID}/{filename}", d.serveMedia)
	}
	d.mu.Lock()
	if appservice {
		d.adapters = append(d.adapters, a)
	}
	d.media = append(d.media, a)
	d.mu.Unlock()
}

func unregister(a *Adapter) {
	dispatchMu.Lock()
	defer dispatchMu.Unlock()
	for _, d := range dispatchers {
		d.mu.Lock()
		d.adapters = slices.DeleteFunc(d.adapters, func(x *Adapter) bool { return x == a })
		d.media = slices.DeleteFunc(d.media, func(x *Adapter) bool { return x == a })
		d.mu.Unlock()
	}
}

// serveMedia hands a media link to the network it names; the signature
// check is the network's.
func (d *dispatcher) serveMedia(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	var match *Adapter
	for _, a := range d.media {
		if a.name == r.PathValue("network") {
			match = a
		}
	}
	d.mu.Unlock()
	if match == nil {
		http.NotFound(w, r)
		return
	}
	match.serveMedia(w, r)
}

// hsToken returns the token a request presents: the Authorization header
// (spec v1.4 on) or the legacy access_token parameter.
func hsToken(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		return tok, ok
	}
	if r.URL.Query().Has("access_token") {
		return r.URL.Query().Get("access_token"), true
	}
	return "", false
}

// tokenMatches compares in constant time (hashes first, so that the
// length does not show either).
func tokenMatches(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1 && want != ""
}

func (d *dispatcher) serve(h func(*Adapter, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := hsToken(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "missing hs_token")
			return
		}
		d.mu.Lock()
		var match *Adapter
		for _, a := range d.adapters {
			// Compare with every adapter, without stopping early.
			if tokenMatches(tok, a.cfg.HSToken) {
				match = a
			}
		}
		d.mu.Unlock()
		if match == nil {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "wrong hs_token")
			return
		}
		h(match, w, r)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(status, map[string]string{"errcode": code, "error": msg}, w)
}

func writeJSON(status int, v any, w http.ResponseWriter) {
	if w == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// putTransaction handles a pushed transaction: its events are handed to
// the router, and only once all were accepted is it acknowledged and
// remembered (in State, across restarts) as done.
func (a *Adapter) putTransaction(w http.ResponseWriter, r *http.Request) {
	txnID := r.PathValue("txnID")
	a.mu.Lock()
	in, ctx := a.in, a.ctx
	a.mu.Unlock()
	if in == nil || ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "not running")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTransaction+1))
	if err != nil || len(body) > maxTransaction {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "cannot read the body")
		return
	}
	var txn appservice.Transaction
	if err := json.Unmarshal(body, &txn); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "cannot parse the transaction")
		return
	}
	if a.nothingToDo(ctx, &txn) {
		// The usual transaction while relaying to Matrix: the homeserver
		// pushes each message a ghost or the bot posted back; or one of
		// rooms Switchboard does not bridge (see irrelevant). Handling it
		// changes nothing, so doing it again is harmless: it is
		// acknowledged without a trip to State (a read, and a write
		// synced to disk to remember it).
		writeJSON(http.StatusOK, struct{}{}, w)
		return
	}
	a.txnMu.Lock()
	defer a.txnMu.Unlock()
	if _, seen, err := a.state.Get(ctx, txnPrefix+txnID); err != nil {
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "state: "+err.Error())
		return
	} else if seen {
		a.log.Debug("matrix transaction seen before", "txn", txnID)
		writeJSON(http.StatusOK, struct{}{}, w)
		return
	}
	// The homeserver's request may time out; the events are handled to the
	// end all the same (they are then deduplicated when sent again).
	hctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	txnIn := &committing{Inbound: in}
	for _, evt := range txn.Events {
		if err := a.handleEvent(hctx, txnIn, evt, event.UnknownEventType); err != nil {
			a.log.Warn("matrix transaction not accepted; the homeserver will send it again", "txn", txnID, "event", evt.ID, "err", err)
			writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "not accepted, try again")
			return
		}
	}
	eph := txn.EphemeralEvents
	if eph == nil {
		eph = txn.MSC2409EphemeralEvents
	}
	for _, evt := range eph {
		if err := a.handleEvent(hctx, txnIn, evt, event.EphemeralEventType); err != nil {
			a.log.Debug("matrix ephemeral event not accepted", "err", err)
		}
	}
	if err := txnIn.durable(); err != nil {
		a.log.Warn("matrix transaction not on disk; the homeserver will send it again", "txn", txnID, "err", err)
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "not accepted, try again")
		return
	}
	if err := a.rememberTxn(ctx, txnID, time.Now()); err != nil {
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "state: "+err.Error())
		return
	}
	writeJSON(http.StatusOK, struct{}{}, w)
}

// nothingToDo tells whether a transaction holds nothing handleEvent
// acts on: Switchboard's own users' messages and what it sent as people
// (no state events, which update the membership cache), and events of
// rooms it does not bridge (irrelevant).
func (a *Adapter) nothingToDo(ctx context.Context, txn *appservice.Transaction) bool {
	for _, evt := range txn.Events {
		skip, err := a.irrelevant(ctx, evt, event.UnknownEventType)
		if err != nil {
			return false
		}
		if skip {
			continue
		}
		if evt.StateKey != nil || !a.isOurs(evt.Sender) && !a.personalEcho(evt) {
			return false
		}
	}
	for _, evts := range [][]*event.Event{txn.EphemeralEvents, txn.MSC2409EphemeralEvents} {
		for _, evt := range evts {
			if skip, err := a.irrelevant(ctx, evt, event.EphemeralEventType); err != nil || !skip {
				return false
			}
		}
	}
	return true
}

// committing is the Inbound of one transaction's events: each is
// committed without waiting for the disk, and durable then waits for them
// all, so that the transaction's events share one sync (see
// bridge.Committer).
type committing struct {
	bridge.Inbound
	waits []func(now bool) error
}

func (c *committing) Accept(ctx context.Context, ev bridge.Event) error {
	durable, err := bridge.Commit(ctx, c.Inbound, ev)
	if err == nil {
		c.waits = append(c.waits, durable)
	}
	return err
}

// durable returns once every event committed is on disk, syncing at
// once: the homeserver waits.
func (c *committing) durable() error {
	for _, wait := range c.waits {
		if err := wait(true); err != nil {
			return err
		}
	}
	return nil
}

// txnPrefix starts the State keys of transactions done; the value is
// when, in RFC 3339.
const txnPrefix = "txn:"

func (a *Adapter) rememberTxn(ctx context.Context, txnID string, at time.Time) error {
	_, err := a.state.PutIfAbsent(ctx, txnPrefix+txnID, at.UTC().Format(time.RFC3339))
	return err
}

// txnTime reads when a transaction was done, for pruning.
func txnTime(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// getUser answers the homeserver's question whether a user in our
// namespace exists: ghosts Switchboard made do (and are registered now).
func (a *Adapter) getUser(w http.ResponseWriter, r *http.Request) {
	u := id.UserID(r.PathValue("userID"))
	if a.ghosts.isGhost(string(u)) {
		if _, ok, _ := a.state.Get(r.Context(), "ghost:"+u.Localpart()); ok {
			if err := ensureRegistered(r.Context(), a.as.Intent(u)); err == nil {
				writeJSON(http.StatusOK, struct{}{}, w)
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no such user")
}

// getRoom answers a room alias query: a portal alias of a link creates
// the portal room, public, with the bot in it.
func (a *Adapter) getRoom(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("roomAlias")
	// Under joinMu: a Leave of the portal at the same time goes first or
	// after, never in between.
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	if !a.isPortal(alias) || !a.wants(alias) {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no such portal")
		return
	}
	a.mu.Lock()
	ctx := a.ctx
	a.mu.Unlock()
	if ctx == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "not running")
		return
	}
	rid, err := a.createPortal(ctx, alias)
	if err != nil {
		a.log.Warn("matrix portal", "alias", alias, "err", err)
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "cannot create the portal")
		return
	}
	a.log.Info("matrix portal room created", "alias", alias, "room", rid)
	writeJSON(http.StatusOK, struct{}{}, w)
}

var portalMu sync.Mutex

func (a *Adapter) createPortal(ctx context.Context, alias string) (id.RoomID, error) {
	portalMu.Lock()
	defer portalMu.Unlock()
	if v, ok, err := a.state.Get(ctx, "portal:"+alias); err != nil {
		return "", err
	} else if ok {
		return id.RoomID(v), nil
	}
	local, _, _ := strings.Cut(strings.TrimPrefix(alias, "#"), ":")
	bot := a.as.BotIntent()
	if err := ensureRegistered(ctx, bot); err != nil {
		return "", err
	}
	resp, err := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		RoomAliasName: local,
		Preset:        "public_chat",
		Name:          strings.TrimPrefix(local, a.ghosts.prefix),
	})
	var rid id.RoomID
	if err != nil {
		// Made before but not remembered (a crash in between)?
		res, rerr := bot.ResolveAlias(ctx, id.RoomAlias(alias))
		if rerr != nil {
			return "", err
		}
		rid = res.RoomID
	} else {
		rid = resp.RoomID
	}
	if err := a.state.Put(ctx, "portal:"+alias, string(rid)); err != nil {
		return "", err
	}
	// The history goes first, then what waited for the room: the
	// alias's answer does not wait for it.
	a.mu.Lock()
	a.seedingRooms[alias] = true
	a.mu.Unlock()
	a.link(alias, rid)
	a.as.StateStore.SetMembership(ctx, rid, a.botID, event.MembershipJoin)
	a.seedWG.Go(func() { a.seedPortal(ctx, alias, rid) })
	a.poke()
	return rid, nil
}
