// Package httpapi is the provisioning API (README, "Provisioning API"):
// links listed, created and deleted, rooms added and removed at runtime,
// and the failed list, behind a bearer token.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
)

// Links is how the API reads and changes links; the service implements it.
type Links interface {
	// Views lists every link as the API shows it, by name, from one
	// reading of the links.
	Views() map[string]Link
	// CreateLink makes a new link of rooms (addresses network:room).
	CreateLink(ctx context.Context, name string, rooms []string) error
	// DeleteLink removes a link; its rooms are left.
	DeleteLink(ctx context.Context, name string) error
	// AddRoom adds a room to a link.
	AddRoom(ctx context.Context, name, room string) error
	// RemoveRoom takes a room out of a link; a link left without rooms is
	// deleted.
	RemoveRoom(ctx context.Context, name, room string) error
}

// Errors of link changes that are not about validity, which Links
// return (wrapped) and the API answers with 409 or 404.
var (
	ErrLinkExists   = errors.New("link exists")
	ErrLinkNotFound = errors.New("no such link")
	ErrRoomNotFound = errors.New("room not in link")
)

// FailedList is the failed list in the store.
type FailedList interface {
	FailedDeliveries(ctx context.Context, limit int) ([]bridge.FailedDelivery, error)
	Discard(ctx context.Context, seq int64) error
}

// Retrier queues a failed delivery again (the router).
type Retrier interface {
	Retry(ctx context.Context, seq int64) (bridge.Queued, error)
}

// API answers the provisioning API's requests.
type API struct {
	links  Links
	failed FailedList
	router Retrier
	people People // nil: no people endpoints
	log    *slog.Logger
	// token is the bearer token; "" turns the API off.
	token atomic.Pointer[string]
}

// New makes the API, off until SetToken gives it a token.
func New(links Links, failed FailedList, router Retrier, log *slog.Logger) *API {
	return &API{links: links, failed: failed, router: router, log: log}
}

// SetToken sets the bearer token (http.api_token); "" turns the API off.
func (s *API) SetToken(token string) { s.token.Store(&token) }

// Routes registers the API's handlers on mux.
func (s *API) Routes(mux *http.ServeMux) {
	mux.Handle("GET /api/links", s.authorized(s.listLinks))
	mux.Handle("POST /api/links", s.authorized(s.createLink))
	mux.Handle("GET /api/links/{name}", s.authorized(s.getLink))
	mux.Handle("DELETE /api/links/{name}", s.authorized(s.deleteLink))
	mux.Handle("POST /api/links/{name}/rooms", s.authorized(s.addRoom))
	mux.Handle("DELETE /api/links/{name}/rooms/{room...}", s.authorized(s.removeRoom))
	s.failedRoutes(mux)
	s.peopleRoutes(mux)
}

// authorized checks the bearer token in constant time: both sides are
// hashed first, so not even the token's length shows in the timing.
func (s *API) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := s.token.Load()
		if want == nil || *want == "" {
			apiError(w, http.StatusForbidden, "", "the provisioning API is off: set http.api_token")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gotSum, wantSum := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(*want))
		if subtle.ConstantTimeCompare(gotSum[:], wantSum[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
			apiError(w, http.StatusUnauthorized, "", "missing or wrong bearer token")
			return
		}
		h(w, r)
	})
}

// Link is a link as the API shows it.
type Link struct {
	Name  string   `json:"name"`
	Rooms []string `json:"rooms"`
	// Source is "config" for a link as the file has it, "runtime" for one
	// created or changed through the API or chat commands.
	Source string `json:"source"`
}

// FieldError names a request's field that is wrong, and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ErrorBody is the answer to a request that failed.
type ErrorBody struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields,omitempty"`
}

func (s *API) linkView(name string) (Link, bool) {
	l, ok := s.links.Views()[name]
	return l, ok
}

func (s *API) listLinks(w http.ResponseWriter, r *http.Request) {
	views := s.links.Views()
	links := make([]Link, 0, len(views))
	for _, l := range views {
		links = append(links, l)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Name < links[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"links": links})
}

func (s *API) getLink(w http.ResponseWriter, r *http.Request) {
	s.respondLink(w, r.PathValue("name"), http.StatusOK)
}

func (s *API) respondLink(w http.ResponseWriter, name string, code int) {
	l, ok := s.linkView(name)
	if !ok {
		apiError(w, http.StatusNotFound, "name", fmt.Sprintf("no link %q", name))
		return
	}
	writeJSON(w, code, l)
}

func (s *API) createLink(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name  string   `json:"name"`
		Rooms []string `json:"rooms"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Name == "" {
		apiError(w, http.StatusBadRequest, "name", "required")
		return
	}
	if len(body.Rooms) == 0 {
		apiError(w, http.StatusBadRequest, "rooms", "a link needs at least one room")
		return
	}
	err := s.links.CreateLink(r.Context(), body.Name, body.Rooms)
	if s.linkChangeFailed(w, err, body.Name, func(i int) string { return fmt.Sprintf("rooms[%d]", i) }) {
		return
	}
	s.respondLink(w, body.Name, http.StatusCreated)
}

func (s *API) deleteLink(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.linkChangeFailed(w, s.links.DeleteLink(r.Context(), name), name, nil) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *API) addRoom(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Room string `json:"room"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Room == "" {
		apiError(w, http.StatusBadRequest, "room", "required")
		return
	}
	name := r.PathValue("name")
	err := s.links.AddRoom(r.Context(), name, body.Room)
	if s.linkChangeFailed(w, err, name, func(int) string { return "room" }) {
		return
	}
	s.respondLink(w, name, http.StatusOK)
}

func (s *API) removeRoom(w http.ResponseWriter, r *http.Request) {
	name, room := r.PathValue("name"), r.PathValue("room")
	if s.linkChangeFailed(w, s.links.RemoveRoom(r.Context(), name, room), name, nil) {
		return
	}
	if _, ok := s.linkView(name); !ok {
		w.WriteHeader(http.StatusNoContent) // that was its last room
		return
	}
	s.respondLink(w, name, http.StatusOK)
}

// linkChangeFailed answers a failed change and reports whether it did.
// Validation errors name links.<name>[i] as in the config file; the
// answer names the request's own fields instead (roomField(i)), except
// for problems with other links, which keep their config path.
func (s *API) linkChangeFailed(w http.ResponseWriter, err error, name string, roomField func(int) string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrLinkExists):
		apiError(w, http.StatusConflict, "name", fmt.Sprintf("link %q exists", name))
	case errors.Is(err, ErrLinkNotFound):
		apiError(w, http.StatusNotFound, "name", fmt.Sprintf("no link %q", name))
	case errors.Is(err, ErrRoomNotFound):
		apiError(w, http.StatusNotFound, "room", err.Error())
	default:
		fields := fieldErrors(err, name, roomField)
		if len(fields) == 0 {
			// Stored and applied, but an adapter could not join or leave:
			// the change stands.
			s.log.Warn("provisioning API", "err", err)
			apiError(w, http.StatusInternalServerError, "", err.Error())
			return true
		}
		badFields(w, fields)
	}
	return true
}

// badFields answers 400 naming each field that is wrong.
func badFields(w http.ResponseWriter, fields []FieldError) {
	msgs := make([]string, len(fields))
	for i, f := range fields {
		msgs[i] = f.Field + ": " + f.Message
	}
	writeJSON(w, http.StatusBadRequest, ErrorBody{Error: strings.Join(msgs, "; "), Fields: fields})
}

func fieldErrors(err error, name string, roomField func(int) string) []FieldError {
	var fes []*config.FieldError
	var fe *config.FieldError
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range multi.Unwrap() {
			if errors.As(e, &fe) {
				fes = append(fes, fe)
			}
		}
	} else if errors.As(err, &fe) {
		fes = append(fes, fe)
	}
	var out []FieldError
	prefix := "links." + name
	for _, fe := range fes {
		field := fe.Path
		if rest, ok := strings.CutPrefix(fe.Path, prefix); ok && name != "" {
			var i int
			switch {
			case rest == "":
				field = "name"
			case roomField != nil && len(rest) > 2 && rest[0] == '[':
				fmt.Sscanf(rest, "[%d]", &i)
				field = roomField(i)
			}
		}
		out = append(out, FieldError{Field: field, Message: fe.Msg})
	}
	return out
}

const maxAPIBody = 64 << 10

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "body", "not a valid JSON request: "+err.Error())
		return false
	}
	return true
}

func apiError(w http.ResponseWriter, code int, field, msg string) {
	body := ErrorBody{Error: msg}
	if field != "" {
		body.Error = field + ": " + msg
		body.Fields = []FieldError{{Field: field, Message: msg}}
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
