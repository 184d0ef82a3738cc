package bridge

// WithoutContent returns a copy of ev with what people said taken out,
// for the store's retention: what stays is what later events about it
// need, its ids, origin, sender and time for replies, edits, deletions
// and reactions to resolve and be checked, and, of a message or an edit,
// the short quote a reply shows (Excerpt), so that a reply to it still
// quotes it. Formatting, attachments, topics, leave reasons and presence
// messages go; so does the sender's IRC mask, which only admin rules read
// when the event arrives.
func WithoutContent(ev Event) Event {
	var out Event
	switch e := ev.(type) {
	case *Message:
		c := *e
		c.Text, c.HTML, c.Attachments = Excerpt(e.Text, excerptRunes), "", nil
		out = &c
	case *Edit:
		c := *e
		c.Text, c.HTML = Excerpt(e.Text, excerptRunes), ""
		out = &c
	case *Delete:
		c := *e
		out = &c
	case *Reaction:
		c := *e
		out = &c
	case *Join:
		c := *e
		out = &c
	case *Leave:
		c := *e
		c.Reason = ""
		out = &c
	case *Rename:
		c := *e
		out = &c
	case *Topic:
		c := *e
		c.Topic = ""
		out = &c
	case *Typing:
		c := *e
		out = &c
	case *Presence:
		c := *e
		c.Message = ""
		out = &c
	default:
		return ev
	}
	h := out.Head()
	h.Sender.Mask = ""
	if h.To != nil {
		to := *h.To
		to.Mask = ""
		h.To = &to
	}
	return out
}
