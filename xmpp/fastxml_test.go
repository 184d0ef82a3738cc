package xmpp

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// decodedElement is what the session's decoder and readElement make of
// raw as a stanza of a stream in space: the reference parseFast is held
// to. ok is false when they fail, or when raw is not exactly one element.
func decodedElement(raw []byte, space string, limit int) (*element, bool) {
	var head bytes.Buffer
	head.WriteString(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='`)
	xml.EscapeText(&head, []byte(space))
	head.WriteString(`'>`)
	d := xml.NewDecoder(bytes.NewReader(append(head.Bytes(), raw...)))
	if _, err := d.Token(); err != nil {
		return nil, false
	}
	tok, err := d.Token()
	start, isStart := tok.(xml.StartElement)
	if err != nil || !isStart {
		return nil, false
	}
	e, err := readElement(d, start, limit)
	if err != nil || d.InputOffset() != int64(head.Len()+len(raw)) {
		return nil, false
	}
	return e, true
}

// What a server sends (Prosody's reflection and presence, as captured)
// takes the fast way, and comes out as the decoder would have it.
func TestParseFastReadsWhatServersSend(t *testing.T) {
	for _, raw := range []string{
		reflectionStanza,
		`<presence from='bench@conference.localhost/bob (libera)' to='p@bridge.localhost' id='x1'><occupant-id xmlns='urn:xmpp:occupant-id:0' id='V7C='/><x xmlns='http://jabber.org/protocol/muc#user'><item role='participant' jid='p@bridge.localhost/x' affiliation='none'/><status code='110'/></x></presence>`,
		"<message type=\"groupchat\" to='a@b'>\n  <body>caf\u00e9 &lt;b&gt; &amp; &quot;q&quot; &apos;s&apos; \U0001F44D</body>\n  <delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>\n</message>",
		`<message xml:lang='en' to='a@b' from='c@d/e f'><body/><x xmlns=''><y/></x></message>`,
	} {
		got, ok := parseFast([]byte(raw), streamNS, 1<<16)
		if !ok {
			t.Errorf("parseFast(%q) did not read it", raw)
			continue
		}
		want, _ := decodedElement([]byte(raw), streamNS, 1<<16)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseFast(%q) = %s, the decoder reads %s", raw, got, want)
		}
	}
}

// What it does not read it leaves to the decoder, whole.
func TestParseFastLeavesTheRest(t *testing.T) {
	for _, raw := range []string{
		`<message><body><![CDATA[x]]></body></message>`,
		`<message><!-- c --></message>`,
		`<message><?pi x?></message>`,
		`<message><body>&#65;</body></message>`,
		`<message><body>&nbsp;</body></message>`,
		`<message xmlns:a='urn:a'><a:b/></message>`,
		`<message id='1' id='2'/>`,
		"<message><body>a\r\nb</body></message>",
		"<message id='a\nb'/>",
		`<message><body>]]></body></message>`,
		`<message><body>x</bod></message>`,
		`<message><body>x</body></message><message/>`,
		`<message id=x/>`,
		`<message id='x'foo='y'/>`,
		"<message><body>\x00</body></message>",
		"<message><body>\xff</body></message>",
		`<message><body>` + strings.Repeat("x", 100) + `</body></message>`, // over the limit below
	} {
		if e, ok := parseFast([]byte(raw), streamNS, 80); ok {
			t.Errorf("parseFast(%q) = %s; want it left to the decoder", raw, e)
		}
	}
}

func FuzzParseFast(f *testing.F) {
	f.Add([]byte(reflectionStanza), 1<<16)
	f.Add([]byte(`<presence to='a'><x xmlns='urn:x'><item a='&lt;'/></x> </presence>`), 200)
	f.Add([]byte(`<message xml:lang='en'><body>a &amp; b</body></message>`), 50)
	f.Fuzz(func(t *testing.T, raw []byte, limit int) {
		got, ok := parseFast(raw, streamNS, limit)
		if !ok {
			return
		}
		want, ok := decodedElement(raw, streamNS, limit)
		if !ok {
			t.Fatalf("parseFast(%q) = %s; the decoder rejects it", raw, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseFast(%q) = %s, the decoder reads %s", raw, got, want)
		}
	})
}

func BenchmarkParseStanza(b *testing.B) {
	for _, p := range []struct {
		name  string
		parse func([]byte, string, int) (*element, bool)
	}{{"fast", parseFast}, {"decoder", decodedElement}} {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(reflectionStanza)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := p.parse([]byte(reflectionStanza), streamNS, 1<<16); !ok {
					b.Fatal("not read")
				}
			}
		})
	}
}

const reflectionStanza = `<message xml:lang='en' from='bench@conference.localhost/bob (libera)' type='groupchat' id='sb-01a1ff1f-99e9-7547-aa76-66d1d91c714a' to='p@bridge.localhost'><body>m198 reading</body><origin-id id='sb-01a1ff1f-99e9-7547-aa76-66d1d91c714a' xmlns='urn:xmpp:sid:0'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='V7Cvc3ERRLGdBbEhSKxQgjzwiUf4HBa3Mi5BuHQPpwY='/><stanza-id by='bench@conference.localhost' xmlns='urn:xmpp:sid:0' id='6eMHgw_bW70PiA8QrfCsPyRg'/></message>`

const streamNS = "jabber:component:accept"

// What appendXML writes reads back as what mellium's encoder writes for
// the same element: the same names, namespaces, attributes and text, with
// anything in the text or attributes kept as text.
func FuzzAppendXML(f *testing.F) {
	f.Add("hello", "a@b/c", "en")
	f.Add("<b>&amp;</b>\r\n\x00'\"]]>\xff\U0001F44D", "x'\"<>&\t\n", "")
	f.Fuzz(func(t *testing.T, text, to, lang string) {
		e := el("", "message", "type", "groupchat", "to", to, "id", "m1")
		e.attr = append(e.attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: lang})
		if lang != "" {
			e.attr = append(e.attr, xml.Attr{Name: xml.Name{Space: nsXML, Local: "lang"}, Value: lang})
		}
		e.add(el("", "body").withText(text), originID("m1"),
			el(nsReply, "reply", "to", to, "id", text).add(el("", "inner").withText(text)))
		raw, ok := e.appendXML(nil, streamNS)
		if !ok {
			t.Fatalf("appendXML did not write %s", e)
		}
		got, ok := decodedElement(raw, streamNS, 1<<20)
		if !ok {
			t.Fatalf("appendXML wrote %q, which does not read back", raw)
		}
		var ref bytes.Buffer
		enc := xml.NewEncoder(&ref)
		toks := e.tokens()
		start := toks[0].(xml.StartElement)
		start.Name.Space = streamNS // as mellium's stanzaEncoder does, which drops an empty from
		start.Attr = slices.DeleteFunc(slices.Clone(start.Attr), func(at xml.Attr) bool { return at.Name.Local == "from" && at.Value == "" })
		toks[0], toks[len(toks)-1] = start, start.End()
		for _, tok := range toks {
			if err := enc.EncodeToken(tok); err != nil {
				t.Fatal(err)
			}
		}
		enc.Flush()
		want, ok := decodedElement(ref.Bytes(), streamNS, 1<<20)
		if !ok {
			t.Fatalf("encoding/xml wrote %q, which does not read back", ref.Bytes())
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("appendXML wrote %q, reading %s; encoding/xml %q, reading %s", raw, got, ref.Bytes(), want)
		}
	})
}
