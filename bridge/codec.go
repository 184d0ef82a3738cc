package bridge

import (
	"encoding/json"
	"fmt"
)

// Encode serializes an event for the store. Decode with its Kind.
func Encode(ev Event) ([]byte, error) {
	if m, ok := ev.(*Message); ok {
		if b, ok := appendMessage(make([]byte, 0, 320+len(m.Text)+len(m.HTML)), m); ok {
			return b, nil
		}
	}
	return json.Marshal(ev)
}

// New returns an empty event of the given kind.
func New(k Kind) (Event, error) {
	switch k {
	case KindMessage:
		return &Message{}, nil
	case KindEdit:
		return &Edit{}, nil
	case KindDelete:
		return &Delete{}, nil
	case KindReaction:
		return &Reaction{}, nil
	case KindJoin:
		return &Join{}, nil
	case KindLeave:
		return &Leave{}, nil
	case KindRename:
		return &Rename{}, nil
	case KindTopic:
		return &Topic{}, nil
	case KindTyping:
		return &Typing{}, nil
	case KindPresence:
		return &Presence{}, nil
	case KindRead:
		return &Read{}, nil
	}
	return nil, fmt.Errorf("unknown event kind %q", k)
}

// Decode is the inverse of Encode.
func Decode(k Kind, data []byte) (Event, error) {
	ev, err := New(k)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", k, err)
	}
	return ev, nil
}
