package matrix

import (
	"reflect"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestMsgTypeFor(t *testing.T) {
	for mime, want := range map[string]event.MessageType{
		"image/png":                event.MsgImage,
		"IMAGE/JPEG":               event.MsgImage,
		"video/mp4":                event.MsgVideo,
		"audio/ogg":                event.MsgAudio,
		"text/plain":               event.MsgFile,
		"application/pdf":          event.MsgFile,
		"application/octet-stream": event.MsgFile,
		"":                         event.MsgFile,
		"imagery/x":                event.MsgFile,
	} {
		if got := msgTypeFor(mime); got != want {
			t.Errorf("msgTypeFor(%q) = %s, want %s", mime, got, want)
		}
	}
}

func TestTextPart(t *testing.T) {
	png := "https://files.example/up/abc/cat.png"
	pdf := "https://files.example/up/def/report.pdf"
	for _, c := range []struct {
		name   string
		m      bridge.Message
		posted []int
		text   string
		html   string
		links  []string
	}{
		{"only the URL", bridge.Message{Text: png, Attachments: atts(png)}, []int{0}, "", "", nil},
		{"text and URL", bridge.Message{Text: "look at this " + png + " !", Attachments: atts(png)}, []int{0}, "look at this !", "", nil},
		{"URL on its own line", bridge.Message{Text: "look\n" + png, Attachments: atts(png)}, []int{0}, "look", "", nil},
		{"name: URL line", bridge.Message{Text: "see\ncat.png: " + png, Attachments: atts(png)}, []int{0}, "see", "", nil},
		{"text is the name (Matrix media)", bridge.Message{Text: "cat.png", Attachments: atts(png)}, []int{0}, "", "", nil},
		{"text without the URL", bridge.Message{Text: "caption", HTML: "<b>caption</b>", Attachments: atts(png)}, []int{0}, "caption", "<b>caption</b>", nil},
		{"HTML with the URL is dropped", bridge.Message{Text: "hi " + png, HTML: `hi <a href="` + png + `">x</a>`, Attachments: atts(png)}, []int{0}, "hi", "", nil},
		{"one stays a link", bridge.Message{Text: png + "\n" + pdf, Attachments: atts(png, pdf)}, []int{1}, png, "", []string{png}},
		{"nothing posted", bridge.Message{Text: png, HTML: "<i>x</i>", Attachments: atts(png)}, nil, png, "<i>x</i>", []string{png}},
		{"other lines keep their spacing", bridge.Message{Text: "  indented  code\n" + png, Attachments: atts(png)}, []int{0}, "  indented  code", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ms []media
			for _, i := range c.posted {
				att := c.m.Attachments[i]
				ms = append(ms, media{index: i, url: att.URL, name: fileName(att)})
			}
			before := c.m
			got := textPart(&c.m, ms)
			if got.Text != c.text || got.HTML != c.html {
				t.Errorf("text %q html %q, want %q %q", got.Text, got.HTML, c.text, c.html)
			}
			var links []string
			for _, a := range got.Attachments {
				links = append(links, a.URL)
			}
			if !reflect.DeepEqual(links, c.links) {
				t.Errorf("links %v, want %v", links, c.links)
			}
			if !reflect.DeepEqual(before, c.m) {
				t.Error("the message itself was changed")
			}
		})
	}
}

func atts(urls ...string) []bridge.Attachment {
	var out []bridge.Attachment
	for _, u := range urls {
		out = append(out, bridge.Attachment{URL: u})
	}
	return out
}

func TestFileNameAndOwnMedia(t *testing.T) {
	for att, want := range map[bridge.Attachment]string{
		{URL: "https://h/a/b/photo.jpg", Name: "Holiday"}: "Holiday",
		{URL: "https://h/a/b/photo%20one.jpg?x=1"}:        "photo one.jpg",
		{URL: "https://h/"}:                               "file",
		{URL: "https://h"}:                                "file",
	} {
		if got := fileName(att); got != want {
			t.Errorf("fileName(%+v) = %q, want %q", att, got, want)
		}
	}
	a := &Adapter{hsURL: "http://127.0.0.1:8008"}
	mxc := "mxc://example.org/AbC123"
	url := a.mediaURL("mxc://example.org/AbC123", "a.png")
	if got, ok := a.ownMedia(url); !ok || string(got) != mxc {
		t.Errorf("ownMedia(mediaURL(%s)) = %q, %v", mxc, got, ok)
	}
	for _, u := range []string{"http://other:8008/_matrix/media/v3/download/example.org/AbC123", "http://127.0.0.1:8008/_matrix/media/v3/download/example.org", "http://127.0.0.1:8008/_matrix/media/v3/download/example.org/a/b"} {
		if got, ok := a.ownMedia(u); ok {
			t.Errorf("ownMedia(%s) = %q", u, got)
		}
	}
}
