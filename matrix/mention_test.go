package matrix

import (
	"reflect"
	"testing"
)

// User pills of sanitized HTML leave it as their text and are read in
// order; links to rooms or elsewhere stay links.
func TestUnpill(t *testing.T) {
	html, pills := unpill(sanitizeHTML(`<a href="https://matrix.to/#/%40bob%3Ahs">bob</a>: see <a href="https://matrix.to/#/#room:hs">#room</a>, <a href="https://matrix.to/#/@carol:hs?via=hs"><b>Carol</b></a> &amp; <a href="https://e.org">e</a>`))
	if want := `bob: see <a href="https://matrix.to/#/%23room:hs">#room</a>, Carol &amp; <a href="https://e.org">e</a>`; html != want {
		t.Errorf("html %q, want %q", html, want)
	}
	if want := []pill{{"@bob:hs", "bob"}, {"@carol:hs", "Carol"}}; !reflect.DeepEqual(pills, want) {
		t.Errorf("pills %+v, want %+v", pills, want)
	}
	if html, pills := unpill("<b>no pill</b>"); html != "<b>no pill</b>" || pills != nil {
		t.Errorf("unpill changed a body without pills: %q %v", html, pills)
	}
}
