package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Native topics, in one world: an IRC channel whose operator is bob (not
// the bot, until bob ops it), a MUC that lets participants change the
// subject, a Matrix room where alice raised the bot to the topic level.
// A topic change anywhere becomes the topic of every room that takes it
// from Switchboard, the action line where the bot may not, and nothing
// comes back.

// quietly is how long a test waits for what must not arrive (a topic
// bridged back): longer than a bridged change takes on this machine.
const quietly = 2 * time.Second

const fallbackPrefix = "changed the topic to: "

type topicWorld struct {
	*mworld
	bob   *testenv.IRCClient
	carol *testenv.XMPPClient
	bot   id.UserID
	// bobGhost is bob's ghost, which alice raised to the topic level too.
	bobGhost id.UserID
	svc      *Service
}

// topicMarks are where each client's records stood before a change.
type topicMarks struct{ irc, xmpp, mx int }

func (w *topicWorld) mark() topicMarks {
	return topicMarks{w.bob.Len(), w.carol.Len(), len(w.alice.Events())}
}

// ircTopics are the TOPIC lines bob saw since m, and the action lines
// announcing one.
func (w *topicWorld) ircTopics(m topicMarks) (topics, actions []testenv.IRCLine) {
	for _, l := range w.bob.Lines()[m.irc:] {
		switch {
		case l.Command == "TOPIC" && strings.EqualFold(l.Target(), room):
			topics = append(topics, l)
		case l.Command == "PRIVMSG" && strings.Contains(l.Text(), fallbackPrefix):
			actions = append(actions, l)
		}
	}
	return topics, actions
}

func subject(s testenv.XMPPStanza) (string, bool) {
	if s.Kind() != "message" || s.Type() != "groupchat" || s.Body() != "" {
		return "", false
	}
	sub := s.Child("", "subject")
	if sub == nil {
		return "", false
	}
	return sub.TextOrEmpty(), true
}

// mucSubjects are the subject changes carol saw since m, and the
// messages announcing one.
func (w *topicWorld) mucSubjects(m topicMarks) (subjects, actions []testenv.XMPPStanza) {
	for _, s := range w.carol.Stanzas()[m.xmpp:] {
		if _, ok := subject(s); ok {
			subjects = append(subjects, s)
		} else if strings.Contains(s.Body(), fallbackPrefix) {
			actions = append(actions, s)
		}
	}
	return subjects, actions
}

func matrixTopic(ev *event.Event) (string, bool) {
	if ev.Type != event.StateTopic {
		return "", false
	}
	_ = ev.Content.ParseRaw(ev.Type)
	c, ok := ev.Content.Parsed.(*event.TopicEventContent)
	if !ok {
		return "", false
	}
	return c.Topic, true
}

// matrixTopics are the m.room.topic events alice saw since m, and the
// messages announcing one.
func (w *topicWorld) matrixTopics(m topicMarks) (topics, actions []*event.Event) {
	for _, ev := range w.alice.Events()[m.mx:] {
		if _, ok := matrixTopic(ev); ok {
			topics = append(topics, ev)
		} else if c, ok := messageText(ev); ok && strings.Contains(c.Body, fallbackPrefix) {
			actions = append(actions, ev)
		}
	}
	return topics, actions
}

// settled waits until nothing more can come back, then checks the counts
// of topic changes and action lines each network saw since m.
func (w *topicWorld) settled(t *testing.T, m topicMarks, ircTopics, ircActions, mucSubjects, mucActions, mxTopics, mxActions int) {
	t.Helper()
	time.Sleep(quietly)
	it, ia := w.ircTopics(m)
	xs, xa := w.mucSubjects(m)
	mt, ma := w.matrixTopics(m)
	if len(it) != ircTopics || len(ia) != ircActions {
		t.Errorf("IRC saw %d TOPIC and %d action lines, want %d and %d: %v %v", len(it), len(ia), ircTopics, ircActions, it, ia)
	}
	if len(xs) != mucSubjects || len(xa) != mucActions {
		t.Errorf("the MUC saw %d subject changes and %d announcements, want %d and %d", len(xs), len(xa), mucSubjects, mucActions)
	}
	if len(mt) != mxTopics || len(ma) != mxActions {
		t.Errorf("Matrix saw %d m.room.topic and %d announcements, want %d and %d", len(mt), len(ma), mxTopics, mxActions)
	}
	// Every delivery confirmed: none waits for a reflection that never
	// comes, to be retried (and announced) later.
	if st := getStatus(t, w.svc); st.Outbox.Depth != 0 {
		t.Errorf("outbox %+v, want every topic delivered", st.Outbox)
	}
}

func (w *topicWorld) waitIRCTopic(t *testing.T, m topicMarks, by, text string) {
	t.Helper()
	l, err := w.bob.WaitFrom(m.irc, patience, func(l testenv.IRCLine) bool {
		return l.Command == "TOPIC" && strings.EqualFold(l.Target(), room) && l.Text() == text
	})
	if err != nil {
		t.Fatalf("no TOPIC %q on IRC: %v", text, err)
	}
	if !strings.EqualFold(l.Nick(), by) {
		t.Errorf("TOPIC set by %s, want %s", l.Nick(), by)
	}
}

func (w *topicWorld) waitSubject(t *testing.T, m topicMarks, nick, text string) {
	t.Helper()
	s, err := w.carol.WaitFrom(m.xmpp, patience, func(s testenv.XMPPStanza) bool {
		got, ok := subject(s)
		return ok && got == text
	})
	if err != nil {
		t.Fatalf("no MUC subject %q: %v", text, err)
	}
	if want := w.room.String() + "/" + nick; s.From() != want {
		t.Errorf("subject set by %s, want %s", s.From(), want)
	}
}

func (w *topicWorld) waitMatrixTopic(t *testing.T, m topicMarks, by id.UserID, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ev, _, err := w.alice.WaitFor(ctx, m.mx, func(ev *event.Event) bool {
		got, ok := matrixTopic(ev)
		return ok && got == text
	})
	if err != nil {
		t.Fatalf("no m.room.topic %q: %v", text, err)
	}
	if ev.Sender != by {
		t.Errorf("m.room.topic sent by %s, want %s", ev.Sender, by)
	}
}

func newTopicWorld(t *testing.T) *topicWorld {
	xw := newXWorldWith(t, testenv.XMPPServerConfig{MUCExtra: "muc_room_default_change_subject = true"})
	w := &topicWorld{mworld: newMWorldOn(t, xw)}
	// First in: bob operates #room, carol owns the MUC.
	w.bob = w.human(t, "bob")
	w.carol = w.person(t, "carol")
	w.bot = id.NewUserID(w.mx.Bot, w.mx.Domain)
	w.bobGhost = id.NewUserID("sb_libera_bob", w.mx.Domain)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var pl event.PowerLevelsEventContent
	if err := w.alice.StateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	pl.SetUserLevel(w.bot, pl.GetEventLevel(event.StateTopic))
	pl.SetUserLevel(w.bobGhost, pl.GetEventLevel(event.StateTopic))
	if _, err := w.alice.SendStateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	w.svc, _ = runService(t, w.config(t, ""))
	if _, err := w.bob.Wait(patience, func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && strings.EqualFold(l.Nick(), "switchboard")
	}); err != nil {
		t.Fatal(err)
	}
	w.waitMatrix(t, "the bot in the room", func(ev *event.Event) bool {
		return ev.Type == event.StateMember && ev.StateKey != nil && *ev.StateKey == string(w.bot)
	})
	return w
}

func TestNativeTopics(t *testing.T) {
	w := newTopicWorld(t)
	carolSets := func(text string) {
		t.Helper()
		if _, err := w.carol.Say(w.room, "", "<subject>"+xmlText(text)+"</subject>"); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a MUC subject on a +t channel the bot does not operate", func(t *testing.T) {
		m := w.mark()
		carolSets("Plans for Friday")
		w.waitMatrixTopic(t, m, w.bot, "Plans for Friday")
		if _, err := w.bob.WaitFrom(m.irc, patience, func(l testenv.IRCLine) bool {
			return l.Command == "PRIVMSG" && l.Text() == "\x01ACTION "+fallbackPrefix+"Plans for Friday\x01" && strings.EqualFold(l.Nick(), "carol[jabber]")
		}); err != nil {
			t.Fatalf("no action line on IRC: %v", err)
		}
		// carol's own subject; Matrix's topic from the bot is not bridged back.
		w.settled(t, m, 0, 1, 1, 0, 1, 0)
	})

	t.Run("a MUC subject on a channel that is not +t", func(t *testing.T) {
		w.bobSetsMode(t, "-t")
		m := w.mark()
		carolSets("Plans for Friday night")
		w.waitIRCTopic(t, m, "switchboard", "Plans for Friday night")
		w.waitMatrixTopic(t, m, w.bot, "Plans for Friday night")
		w.settled(t, m, 1, 0, 1, 0, 1, 0)
		w.bobSetsMode(t, "+t")
	})

	t.Run("a MUC subject once the bot is a channel operator", func(t *testing.T) {
		w.bobSetsMode(t, "+o", "switchboard")
		m := w.mark()
		carolSets("Plans for Saturday")
		w.waitIRCTopic(t, m, "switchboard", "Plans for Saturday")
		w.waitMatrixTopic(t, m, w.bot, "Plans for Saturday")
		w.settled(t, m, 1, 0, 1, 0, 1, 0)
	})

	t.Run("an IRC topic", func(t *testing.T) {
		m := w.mark()
		w.bob.Topic(room, "Plans for Sunday")
		w.waitSubject(t, m, "bob (libera)", "Plans for Sunday")
		w.waitMatrixTopic(t, m, w.bobGhost, "Plans for Sunday")
		w.settled(t, m, 1, 0, 1, 0, 1, 0)
	})

	t.Run("a Matrix topic", func(t *testing.T) {
		m := w.mark()
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if _, err := w.alice.SendStateEvent(ctx, w.roomID, event.StateTopic, "", &event.TopicEventContent{Topic: "Plans for Monday"}); err != nil {
			t.Fatal(err)
		}
		w.waitIRCTopic(t, m, "switchboard", "Plans for Monday")
		w.waitSubject(t, m, "alice (mx)", "Plans for Monday")
		w.settled(t, m, 1, 0, 1, 0, 1, 0)
	})

	t.Run("rooms that stopped taking our topic get the action line", func(t *testing.T) {
		// carol closes the subject to moderators: the bridge still takes
		// the MUC for open (it asked once), and learns from the refusal.
		res, err := w.carol.IQ(w.room, "set", `<query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit">`+
			`<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`+
			`<field var="muc#roomconfig_changesubject"><value>0</value></field></x></query>`)
		if err != nil || res.Type() != "result" {
			t.Fatalf("room config: %v %s", err, res.Raw)
		}
		// alice takes the power of the bot and bob's ghost back.
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		var pl event.PowerLevelsEventContent
		if err := w.alice.StateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
			t.Fatal(err)
		}
		pl.SetUserLevel(w.bot, 0)
		pl.SetUserLevel(w.bobGhost, 0)
		if _, err := w.alice.SendStateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{"Plans for Tuesday", "Plans for Wednesday"} {
			m := w.mark()
			w.bob.Topic(room, text)
			s, err := w.carol.WaitFrom(m.xmpp, patience, func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), fallbackPrefix+text) })
			if err != nil {
				t.Fatalf("no action line in the MUC: %v", err)
			}
			if s.Body() != "/me "+fallbackPrefix+text || s.Nick() != "bob (libera)" {
				t.Errorf("MUC announcement %q from %s, want bob's /me line", s.Body(), s.Nick())
			}
			w.waitMatrix(t, "the action line", func(ev *event.Event) bool {
				c, ok := messageText(ev)
				return ok && c.MsgType == event.MsgEmote && c.Body == fallbackPrefix+text
			})
			w.settled(t, m, 1, 0, 0, 1, 0, 1)
		}
	})
}

// bobSetsMode has bob change #room's modes and waits until he sees it.
func (w *topicWorld) bobSetsMode(t *testing.T, params ...string) {
	t.Helper()
	from := w.bob.Len()
	w.bob.Send("MODE", append([]string{room}, params...)...)
	if _, err := w.bob.WaitFrom(from, patience, func(l testenv.IRCLine) bool {
		return l.Command == "MODE" && len(l.Params) >= 2 && l.Params[1] == params[0]
	}); err != nil {
		t.Fatal(err)
	}
}

func xmlText(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}
