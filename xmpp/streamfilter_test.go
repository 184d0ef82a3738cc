package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	filterProlog = `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='bridge.localhost'>`
	filterEnd    = `</stream:stream>`
)

// dropToPuppet stands in for skip: it drops messages to one address.
func dropToPuppet(start *xml.StartElement) bool {
	return start.Name.Local == "message" && attrOf(start, "to") == "p@bridge.localhost"
}

// chunkConn hands out its data a few bytes per Read, as a socket may.
type chunkConn struct {
	net.Conn
	data  []byte
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func filtered(t testing.TB, stream string, chunk int) string {
	t.Helper()
	out, _ := filteredTaking(t, stream, chunk, nil)
	return out
}

// withoutDropped is what the filter should pass: the stream with the
// top-level elements dropToPuppet drops cut out, as encoding/xml finds
// them. ok is false for a stream encoding/xml rejects.
func withoutDropped(stream string) (string, bool) {
	out, _, ok := cutStream(stream, nil)
	return out, ok
}

// cutStream is withoutDropped where the filter also offers the messages
// and presences it keeps to take: offered are those, whole, in order, and
// out is without those take took.
func cutStream(stream string, take func(raw string) bool) (out string, offered []string, ok bool) {
	d := xml.NewDecoder(strings.NewReader(stream))
	var b strings.Builder
	var open []xml.Name
	kept, cut := int64(0), -1 // cut: depth of the element being cut out
	var offer int64 = -1      // where the element being offered began
	for {
		before := d.InputOffset()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			b.WriteString(stream[kept:])
			return b.String(), offered, len(open) == 0
		}
		if err != nil {
			return "", nil, false
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if len(open) == 1 && tok.Name.Space == "" && dropToPuppet(&tok) {
				b.WriteString(stream[kept:before])
				cut = 1
			} else if _, parsed := new(stanzaFilter).parseStartTag([]byte(stream[before:d.InputOffset()])); len(open) == 1 && take != nil && parsed &&
				tok.Name.Space == "" && (tok.Name.Local == "message" || tok.Name.Local == "presence") {
				offer = before
			}
			open = append(open, tok.Name)
		case xml.EndElement:
			if len(open) == 0 || open[len(open)-1] != tok.Name {
				return "", nil, false
			}
			open = open[:len(open)-1]
			if len(open) == cut {
				kept, cut = d.InputOffset(), -1
			}
			if len(open) == 1 && offer >= 0 {
				raw := stream[offer:d.InputOffset()]
				offered = append(offered, raw)
				if take(raw) {
					b.WriteString(stream[kept:offer])
					kept = d.InputOffset()
				}
				offer = -1
			}
		case xml.Directive:
			return "", nil, false // no DTDs in XMPP: the filter passes them whole
		}
	}
}

// takeEven stands in for the adapter's handleRaw: it takes the stanzas of
// even length.
func takeEven(raw string) bool { return len(raw)%2 == 0 }

// filteredTaking is filtered with the filter's handle set to take, if
// not nil; it returns the stanzas offered to take too.
func filteredTaking(t testing.TB, stream string, chunk int, take func(string) bool) (string, []string) {
	t.Helper()
	f := newStanzaFilter(&chunkConn{data: []byte(stream), chunk: chunk}, dropToPuppet)
	var offered []string
	if take != nil {
		f.handle = func(raw []byte) bool {
			offered = append(offered, string(raw))
			return take(string(raw))
		}
	}
	out, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), offered
}

func TestStanzaFilterDropsWholeStanzas(t *testing.T) {
	keep := `<message to='bot@bridge.localhost' from='room@muc/a&amp;b' type='groupchat'><body>a &gt; b, <![CDATA[</message><message to='p@bridge.localhost'>]]> <!-- </message> --></body></message>`
	drop := `<message from="room@muc/x" to="p@bridge.localhost" type='groupchat'><body a='>'>hi<b/></body><x xmlns='y'><i/></x></message>`
	dropEscaped := `<message to='p&#64;bridge.localhost'/>`
	presence := `<presence to='p@bridge.localhost' from='room@muc/x'><x/></presence>`
	stream := filterProlog + keep + "\n" + drop + dropEscaped + " " + presence + keep + filterEnd
	want := filterProlog + keep + "\n" + " " + presence + keep + filterEnd
	for _, chunk := range []int{1, 2, 3, 7, 64, 4096} {
		if got := filtered(t, stream, chunk); got != want {
			t.Errorf("%d-byte reads: got\n%s\nwant\n%s", chunk, got, want)
		}
	}
	if ref, _ := withoutDropped(stream); ref != want {
		t.Errorf("encoding/xml cuts\n%s", ref)
	}
}

// A start tag the filter cannot parse, or one past its bound, passes.
func TestStanzaFilterPassesWhatItCannotRead(t *testing.T) {
	for _, s := range []string{
		`<message to='p@bridge.localhost' from='a&unknown;'/>`,
		`<client:message to='p@bridge.localhost'/>`,
		`<message to='p@bridge.localhost' pad='` + strings.Repeat("x", maxStartTag) + `'/>`,
	} {
		stream := filterProlog + s + filterEnd
		if got := filtered(t, stream, 5); got != stream {
			t.Errorf("%.80s: not passed whole: %.200s", s, got)
		}
	}
}

func FuzzStanzaFilter(f *testing.F) {
	f.Add(`<message to='p@bridge.localhost'><body>x</body></message><iq id='1'/>`, uint8(3))
	f.Add(`<presence/><message to="p@bridge.localhost" a='"&gt;'><![CDATA[]]]]><!----></message>`, uint8(1))
	f.Add(`<?pi x?><message to='p@bridge.localhost'/> <message to='q'>&lt;</message>`, uint8(2))
	f.Fuzz(func(t *testing.T, body string, chunk uint8) {
		stream := filterProlog + body + filterEnd
		want, ok := withoutDropped(stream)
		if !ok {
			t.Skip("not XML encoding/xml reads as a stream")
		}
		if got := filtered(t, stream, int(chunk%16)+1); got != want {
			t.Errorf("got\n%q\nwant\n%q", got, want)
		}
		want, wantOffered, _ := cutStream(stream, takeEven)
		got, offered := filteredTaking(t, stream, int(chunk%16)+1, takeEven)
		if got != want || !slices.Equal(offered, wantOffered) {
			t.Errorf("taking: got\n%q\nwant\n%q\noffered\n%q\nwant\n%q", got, want, offered, wantOffered)
		}
	})
}

// A stanza the filter drops waits for nothing: the read returns at once
// with what follows it.
func TestStanzaFilterReadsOn(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		server.Write([]byte(filterProlog + `<message to='p@bridge.localhost'/>`))
		server.Write([]byte(`<iq id='x'/>`))
	}()
	f := newStanzaFilter(client, dropToPuppet)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 100)
	for !strings.HasSuffix(got.String(), `<iq id='x'/>`) {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("read: %v, after %q", err, got.String())
		}
		got.Write(buf[:n])
	}
	if want := filterProlog + `<iq id='x'/>`; got.String() != want {
		t.Errorf("got %q, want %q", got.String(), want)
	}
}

func BenchmarkStanzaFilter(b *testing.B) {
	puppet := `<message xml:lang='en' from='bench@conference.localhost/bob (libera)' type='groupchat' id='sb-01a1ff1f-99e9-7547-aa76-66d1d91c714a' to='p@bridge.localhost'><body>m198 reading</body><origin-id id='sb-01a1ff1f-99e9-7547-aa76-66d1d91c714a' xmlns='urn:xmpp:sid:0'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='V7Cvc3ERRLGdBbEhSKxQgjzwiUf4HBa3Mi5BuHQPpwY='/><stanza-id by='bench@conference.localhost' xmlns='urn:xmpp:sid:0' id='6eMHgw_bW70PiA8QrfCsPyRg'/></message>`
	b.Run("filter", func(b *testing.B) {
		f := newStanzaFilter(nil, dropToPuppet)
		f.scan([]byte(filterProlog))
		f.out = f.out[:0]
		b.SetBytes(int64(len(puppet)))
		for b.Loop() {
			if rest := f.scan([]byte(puppet)); len(rest) > 0 || len(f.out) > 0 {
				b.Fatalf("passed %q, left %q", f.out, rest)
			}
		}
	})
	// For comparison: what the session's decoder spends on the copy.
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(puppet)))
		for b.Loop() {
			d := xml.NewDecoder(strings.NewReader(puppet))
			for {
				if _, err := d.Token(); err != nil {
					break
				}
			}
		}
	})
}

// The filter decides on a stanza only once the ones before it were read:
// a stanza read earlier may change what is to be dropped (the nick a
// puppet held now someone else's).
func TestStanzaFilterDecidesAfterWhatCameBefore(t *testing.T) {
	dropping := true
	stream := filterProlog + `<presence from='room@muc/p' type='unavailable'/>` +
		`<message to='p@bridge.localhost'><body>from whoever holds the nick now</body></message>` + filterEnd
	f := newStanzaFilter(&chunkConn{data: []byte(stream), chunk: len(stream)},
		func(start *xml.StartElement) bool { return dropping && dropToPuppet(start) })
	d := xml.NewDecoder(f)
	var got []string
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			got = append(got, tok.Name.Local)
		case xml.EndElement:
			if tok.Name.Local == "presence" {
				dropping = false // as the handler would, having read it
			}
		}
	}
	if want := []string{"stream", "presence", "message", "body"}; !slices.Equal(got, want) {
		t.Errorf("elements read %v, want %v", got, want)
	}
}

// Kept messages and presences are offered whole to handle, in order; what
// it takes is not passed, what it leaves is, and so is everything else.
func TestStanzaFilterOffersKeptStanzas(t *testing.T) {
	taken := `<message to='bot@bridge.localhost' type='groupchat'><body>a &gt; b</body></message>`
	left := `<presence from='room@muc/x' to='bot@bridge.localhost'><x xmlns='y'/></presence>`
	dropped := `<message to='p@bridge.localhost'><body>x</body></message>`
	iq := `<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`
	self := `<presence to='bot@bridge.localhost' type='unavailable'/>`
	stream := filterProlog + taken + dropped + left + " " + iq + self + taken + filterEnd
	take := func(raw string) bool { return raw != left }
	want := filterProlog + left + " " + iq + filterEnd
	for _, chunk := range []int{1, 2, 5, 64, 4096} {
		got, offered := filteredTaking(t, stream, chunk, take)
		if got != want {
			t.Errorf("%d-byte reads: passed\n%s\nwant\n%s", chunk, got, want)
		}
		if w := []string{taken, left, self, taken}; !slices.Equal(offered, w) {
			t.Errorf("%d-byte reads: offered\n%q\nwant\n%q", chunk, offered, w)
		}
	}
	// A stanza longer than the filter holds goes to the decoder as it comes.
	long := `<message to='bot@bridge.localhost'><body>` + strings.Repeat("x", maxHeld) + `</body></message>`
	stream = filterProlog + long + taken + filterEnd
	got, offered := filteredTaking(t, stream, 4096, take)
	if want := filterProlog + long + filterEnd; got != want || !slices.Equal(offered, []string{taken}) {
		t.Errorf("after a long stanza: passed %.100q…, offered %q", got, offered)
	}
}

// A stanza is offered only once the decoder has read everything passed
// before it, so that the handler has dispatched those first.
func TestStanzaFilterOffersAfterWhatCameBefore(t *testing.T) {
	stream := filterProlog + `<iq type='result' id='1'/><message to='bot@bridge.localhost'><body>hi</body></message>` + filterEnd
	f := newStanzaFilter(&chunkConn{data: []byte(stream), chunk: len(stream)}, dropToPuppet)
	iqRead := false
	f.handle = func(raw []byte) bool {
		if !iqRead {
			t.Errorf("offered %s before the decoder read the iq", raw)
		}
		return true
	}
	d := xml.NewDecoder(f)
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if end, ok := tok.(xml.EndElement); ok && end.Name.Local == "iq" {
			iqRead = true
		}
	}
	if !iqRead {
		t.Error("the iq never reached the decoder")
	}
}
