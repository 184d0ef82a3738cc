package bridge

// RemoveContent takes what people said out of ev, in place, for the
// store's retention (the store hands it events it has just decoded):
// what stays is what later events about it need, its ids, origin, sender
// and time for replies, edits, deletions and reactions to resolve and be
// checked, and, of a message or an edit, the short quote a reply shows
// (Excerpt), so that a reply to it still quotes it. Formatting,
// attachments, topics, leave reasons and presence messages go; so does
// the sender's IRC mask, which only admin rules read when the event
// arrives.
func RemoveContent(ev Event) {
	switch e := ev.(type) {
	case *Message:
		e.Text, e.HTML, e.Attachments = Excerpt(e.Text, excerptRunes), "", nil
	case *Edit:
		e.Text, e.HTML = Excerpt(e.Text, excerptRunes), ""
	case *Leave:
		e.Reason = ""
	case *Topic:
		e.Topic = ""
	case *Presence:
		e.Message = ""
	}
	h := ev.Head()
	h.Sender.Mask = ""
	if h.To != nil {
		h.To.Mask = ""
	}
}
