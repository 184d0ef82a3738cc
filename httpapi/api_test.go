package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
)

// fakeLinks answers the API's link changes from memory; createErr, when
// set, is what CreateLink fails with.
type fakeLinks struct {
	links     map[string]Link
	createErr error
}

func (f *fakeLinks) Views() map[string]Link { return f.links }

func (f *fakeLinks) CreateLink(_ context.Context, name string, rooms []string) error {
	if f.createErr != nil {
		return f.createErr
	}
	if _, ok := f.links[name]; ok {
		return fmt.Errorf("links.%s: %w", name, ErrLinkExists)
	}
	f.links[name] = Link{Name: name, Rooms: rooms, Source: "runtime"}
	return nil
}

func (f *fakeLinks) DeleteLink(context.Context, string) error         { return ErrLinkNotFound }
func (f *fakeLinks) AddRoom(context.Context, string, string) error    { return ErrLinkNotFound }
func (f *fakeLinks) RemoveRoom(context.Context, string, string) error { return ErrLinkNotFound }

func serve(t *testing.T, api *API, method, path, token, body string) (int, ErrorBody, http.Header) {
	t.Helper()
	mux := http.NewServeMux()
	api.Routes(mux)
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var eb ErrorBody
	json.Unmarshal(rec.Body.Bytes(), &eb)
	return rec.Code, eb, rec.Header()
}

// Without a token the API is off; a wrong token is refused with a
// challenge; the right one gets in. A reload's new token replaces the old.
func TestAPIToken(t *testing.T) {
	api := New(&fakeLinks{links: map[string]Link{}}, nil, nil, slog.New(slog.DiscardHandler))
	if code, eb, _ := serve(t, api, "GET", "/api/links", "anything", ""); code != http.StatusForbidden || !strings.Contains(eb.Error, "http.api_token") {
		t.Errorf("no token set: %d %q, want 403 naming http.api_token", code, eb.Error)
	}
	api.SetToken("secret-one")
	if code, _, h := serve(t, api, "GET", "/api/links", "secret-two", ""); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong token: %d, challenge %q; want 401 with one", code, h.Get("WWW-Authenticate"))
	}
	if code, _, _ := serve(t, api, "GET", "/api/links", "secret-one", ""); code != http.StatusOK {
		t.Errorf("right token: %d, want 200", code)
	}
	api.SetToken("secret-two")
	if code, _, _ := serve(t, api, "GET", "/api/links", "secret-one", ""); code != http.StatusUnauthorized {
		t.Errorf("the old token after a reload: %d, want 401", code)
	}
}

// A change the config's validation refuses names the request's fields,
// not the config file's paths; a problem with another link keeps its
// path; an existing link is a conflict.
func TestAPICreateLinkErrors(t *testing.T) {
	links := &fakeLinks{links: map[string]Link{"old": {Name: "old", Rooms: []string{"a:x", "b:y"}, Source: "config"}}}
	api := New(links, nil, nil, slog.New(slog.DiscardHandler))
	api.SetToken("t")
	links.createErr = errors.Join(
		&config.FieldError{Path: "links.lobby[1]", Msg: "no network is named \"nope\""},
		&config.FieldError{Path: "links.old[0]", Msg: "also in link \"lobby\""},
	)
	code, eb, _ := serve(t, api, "POST", "/api/links", "t", `{"name": "lobby", "rooms": ["a:z", "nope:q"]}`)
	want := []FieldError{{Field: "rooms[1]", Message: "no network is named \"nope\""}, {Field: "links.old[0]", Message: "also in link \"lobby\""}}
	if code != http.StatusBadRequest || fmt.Sprint(eb.Fields) != fmt.Sprint(want) {
		t.Errorf("refused change: %d %+v, want 400 %+v", code, eb.Fields, want)
	}
	links.createErr = nil
	if code, eb, _ := serve(t, api, "POST", "/api/links", "t", `{"name": "old", "rooms": ["a:z"]}`); code != http.StatusConflict || eb.Fields[0].Field != "name" {
		t.Errorf("existing link: %d %+v, want 409 naming name", code, eb)
	}
	if code, eb, _ := serve(t, api, "POST", "/api/links", "t", `{"name": "new", "rooms": ["a:z"], "extra": 1}`); code != http.StatusBadRequest || eb.Fields[0].Field != "body" {
		t.Errorf("unknown key: %d %+v, want 400 naming body", code, eb)
	}
}
