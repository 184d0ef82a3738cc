package adapters

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

func TestImageType(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		mime string
		ok   bool
	}{
		{"png", b.Bytes(), "image/png", true},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), "image/gif", true},
		{"html", []byte("<html><script>alert(1)</script></html>"), "text/html", false},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "text/plain", false},
		{"empty", nil, "text/plain", false},
	}
	for _, c := range cases {
		mime, ok := ImageType(c.data)
		if mime != c.mime || ok != c.ok {
			t.Errorf("%s: %q %v, want %q %v", c.name, mime, ok, c.mime, c.ok)
		}
	}
}
