package service

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/switchboard-chat/switchboard/config"
)

// The provisioning API (README, "Provisioning API"): links listed,
// created and deleted, rooms added and removed, at runtime.
func (s *Service) apiRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/links", s.authorized(s.listLinks))
	mux.Handle("POST /api/links", s.authorized(s.createLink))
	mux.Handle("GET /api/links/{name}", s.authorized(s.getLink))
	mux.Handle("DELETE /api/links/{name}", s.authorized(s.deleteLink))
	mux.Handle("POST /api/links/{name}/rooms", s.authorized(s.addRoom))
	mux.Handle("DELETE /api/links/{name}/rooms/{room...}", s.authorized(s.removeRoom))
	s.failedRoutes(mux)
}

// authorized checks the bearer token in constant time: both sides are
// hashed first, so not even the token's length shows in the timing.
func (s *Service) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := s.apiToken.Load()
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

type apiLink struct {
	Name  string   `json:"name"`
	Rooms []string `json:"rooms"`
	// Source is "config" for a link as the file has it, "runtime" for one
	// created or changed through the API or chat commands.
	Source string `json:"source"`
}

type apiFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type apiErrorBody struct {
	Error  string          `json:"error"`
	Fields []apiFieldError `json:"fields,omitempty"`
}

// linkViews lists every link as the API shows it, from one reading of
// the links.
func (s *Service) linkViews() map[string]apiLink {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	views := map[string]apiLink{}
	for name, rooms := range s.overlay.over(s.cfg.LinkRooms) {
		src := "config"
		if _, changed := s.overlay.Links[name]; changed {
			src = "runtime"
		}
		views[name] = apiLink{Name: name, Rooms: rooms, Source: src}
	}
	return views
}

func (s *Service) linkView(name string) (apiLink, bool) {
	l, ok := s.linkViews()[name]
	return l, ok
}

func (s *Service) listLinks(w http.ResponseWriter, r *http.Request) {
	views := s.linkViews()
	links := make([]apiLink, 0, len(views))
	for _, l := range views {
		links = append(links, l)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Name < links[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"links": links})
}

func (s *Service) getLink(w http.ResponseWriter, r *http.Request) {
	s.respondLink(w, r.PathValue("name"), http.StatusOK)
}

func (s *Service) respondLink(w http.ResponseWriter, name string, code int) {
	l, ok := s.linkView(name)
	if !ok {
		apiError(w, http.StatusNotFound, "name", fmt.Sprintf("no link %q", name))
		return
	}
	writeJSON(w, code, l)
}

func (s *Service) createLink(w http.ResponseWriter, r *http.Request) {
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
	err := s.CreateLink(r.Context(), body.Name, body.Rooms)
	if s.linkChangeFailed(w, err, body.Name, func(i int) string { return fmt.Sprintf("rooms[%d]", i) }) {
		return
	}
	s.respondLink(w, body.Name, http.StatusCreated)
}

func (s *Service) deleteLink(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.linkChangeFailed(w, s.DeleteLink(r.Context(), name), name, nil) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) addRoom(w http.ResponseWriter, r *http.Request) {
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
	err := s.AddRoom(r.Context(), name, body.Room)
	if s.linkChangeFailed(w, err, name, func(int) string { return "room" }) {
		return
	}
	s.respondLink(w, name, http.StatusOK)
}

func (s *Service) removeRoom(w http.ResponseWriter, r *http.Request) {
	name, room := r.PathValue("name"), r.PathValue("room")
	if s.linkChangeFailed(w, s.RemoveRoom(r.Context(), name, room), name, nil) {
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
func (s *Service) linkChangeFailed(w http.ResponseWriter, err error, name string, roomField func(int) string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errLinkExists):
		apiError(w, http.StatusConflict, "name", fmt.Sprintf("link %q exists", name))
	case errors.Is(err, errLinkNotFound):
		apiError(w, http.StatusNotFound, "name", fmt.Sprintf("no link %q", name))
	case errors.Is(err, errRoomNotFound):
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
		msgs := make([]string, len(fields))
		for i, f := range fields {
			msgs[i] = f.Field + ": " + f.Message
		}
		writeJSON(w, http.StatusBadRequest, apiErrorBody{Error: strings.Join(msgs, "; "), Fields: fields})
	}
	return true
}

func fieldErrors(err error, name string, roomField func(int) string) []apiFieldError {
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
	var out []apiFieldError
	prefix := "links." + name
	for _, fe := range fes {
		field := fe.Path
		if rest, ok := strings.CutPrefix(fe.Path, prefix); ok {
			var i int
			switch {
			case rest == "":
				field = "name"
			case roomField != nil && len(rest) > 2 && rest[0] == '[':
				fmt.Sscanf(rest, "[%d]", &i)
				field = roomField(i)
			}
		}
		out = append(out, apiFieldError{Field: field, Message: fe.Msg})
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
	body := apiErrorBody{Error: msg}
	if field != "" {
		body.Error = field + ": " + msg
		body.Fields = []apiFieldError{{Field: field, Message: msg}}
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
