package bridge

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func encodeCase(text, other string, flags uint8, at time.Time) *Message {
	m := &Message{Header: Header{ID: EventID(other), Time: at,
		Origin: Origin{Network: "irc", Room: other},
		Sender: Sender{Network: "irc", ID: text, Name: other}}, Text: text}
	if flags&1 != 0 {
		m.HTML, m.Emote, m.Origin.RemoteID, m.Sender.Mask = other, true, text, other
	}
	if flags&2 != 0 {
		m.Notice, m.ReplyTo = true, Ref{Event: EventID(text)}
		m.To = &Sender{Network: "xmpp", ID: other, Name: text, Mask: text, Person: other}
		m.Sender.Person, m.Sender.Home = text, other
	}
	if flags&4 != 0 {
		m.ReplyTo = Ref{Event: EventID(other), Remote: text}
		m.Attachments = []Attachment{{URL: text}, {URL: other, Name: text, Mime: "image/png", Size: -7}}
	}
	if flags&8 != 0 {
		m.ReplyTo = Ref{Remote: other}
		m.Thread = Ref{Event: EventID(text)}
		m.Mentions = []Mention{{Sender: Sender{Network: "matrix", ID: text, Name: other}, Text: other}, {Sender: Sender{ID: other}}}
	}
	return m
}

// FuzzEncodeMessage: the hand-written encoding of a Message is
// json.Marshal's, byte for byte, whatever the text.
func FuzzEncodeMessage(f *testing.F) {
	for _, s := range []string{"", "hello", `"quoted" \back\slash`, "<b>&amp;</b>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"\xff\xfe bad utf-8 \xc3", "line\u2028para\u2029", "emoji 👍🏽 ünïcödé", "\u00a0\ufeff"} {
		f.Add(s, "room/"+s, uint8(15), int64(1795273845123456789), 0)
		f.Add(s, s, uint8(0), int64(0), 3600*5+1800)
	}
	f.Fuzz(func(t *testing.T, text, other string, flags uint8, nanos int64, offset int) {
		at := time.Unix(0, nanos).In(time.FixedZone("z", offset%(26*3600)))
		m := encodeCase(text, other, flags, at)
		want, wantErr := json.Marshal(m)
		got, err := Encode(m)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("Encode:\n%s, %v\njson.Marshal:\n%s, %v", got, err, want, wantErr)
		}
	})
}

func TestEncodeMessageOutOfRange(t *testing.T) {
	m := encodeCase("hi", "there", 0, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := Encode(m); err == nil {
		t.Error("a message from the year 10000 encodes")
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	m := encodeCase("m1 reading, with a little more text than that", "#bench", 1, time.Now())
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			Encode(m)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(m)
		}
	})
}

// Every field of a Message, down to its attachments, set: a field added
// to the event model and not to appendMessage fails here.
func TestEncodeMessageKnowsEveryField(t *testing.T) {
	var m Message
	fill(reflect.ValueOf(&m).Elem())
	want, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Encode(&m); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Encode:\n%s, %v\njson.Marshal:\n%s", got, err, want)
	}
}

// fill sets every exported field of v to a value that is not its zero.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 21, 16, 30, 0, 123, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	default:
		panic("fill: add " + v.Kind().String())
	}
}
