package textlinks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/store"
)

// texts is a TextStore double: the real store cannot remove texts yet,
// so the answers to retention and store failures are checked here.
type texts map[bridge.EventID]error

func (x texts) FullText(_ context.Context, id bridge.EventID) (string, error) {
	if err, ok := x[id]; ok {
		return "", err
	}
	return "", bridge.ErrNotFound
}

func TestTextLinkAnswers(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tl, err := New(context.Background(), "https://bridge.example", st.State("@switchboard"), texts{
		"removed": bridge.ErrContentRemoved,
		"broken":  errors.New("disk on fire"),
	}, testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	tl.Routes(mux)
	get := func(link string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, strings.TrimPrefix(link, "https://bridge.example"), nil))
		return rec
	}
	for id, want := range map[bridge.EventID]int{
		"removed": http.StatusGone,
		"unknown": http.StatusNotFound,
		"broken":  http.StatusServiceUnavailable,
	} {
		rec := get(tl.TextLink(id))
		if rec.Code != want || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v, want %d with nosniff", id, rec.Code, rec.Header(), want)
		}
		if strings.Contains(rec.Body.String(), "fire") {
			t.Errorf("%s: the store's error reaches the reader: %q", id, rec.Body)
		}
	}
	// A link of another key (another Switchboard, or before the key was
	// made) is not taken, even for an event that exists.
	other, err := store.Open(context.Background(), "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tl2, err := New(context.Background(), "https://bridge.example", other.State("@switchboard"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec := get(tl2.TextLink("removed")); rec.Code != http.StatusNotFound {
		t.Errorf("another key's link: %d, want 404", rec.Code)
	}
	// The key is kept: after a restart on the same store, links are the
	// same.
	again, err := New(context.Background(), "https://bridge.example", st.State("@switchboard"), nil, nil)
	if err != nil || again.TextLink("x") != tl.TextLink("x") {
		t.Errorf("after a restart: %s, before %s (%v)", again.TextLink("x"), tl.TextLink("x"), err)
	}
}
