package bridge

// A room notice is Switchboard itself telling every room of a link
// something about one of them (a Matrix room turned encrypted): a
// Message with Notice set and no sender. The router carries it durably
// like any message, and delivers it through each receiving adapter's
// bot (BotSender), never a puppet: nobody said it.

// RoomNotice is a notice about room, once: key names what it says, and
// an adapter that makes the same notice again (after a restart) is
// refused by the store as a duplicate, as a message seen twice is.
func RoomNotice(room RoomAddr, key, text string) *Message {
	return &Message{
		Header: Header{Origin: Origin{Network: room.Network, Room: room.Room, RemoteID: "switchboard-notice:" + key}},
		Text:   text, Notice: true,
	}
}

// IsRoomNotice reports whether ev is a notice of Switchboard's own.
func IsRoomNotice(ev Event) bool {
	m, ok := ev.(*Message)
	return ok && m.Notice && m.Sender.ID == "" && m.Sender.Network == "" && m.To == nil
}
