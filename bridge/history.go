package bridge

import (
	"context"
	"time"
)

// HistoryEntry is one message of a link's history as it stands now: with
// the text of its latest edit.
type HistoryEntry struct {
	Message *Message
	// Edited is when the message was last edited; zero if never.
	Edited time.Time
}

// HistoryQuery asks for the last messages said in the rooms of a link.
type HistoryQuery struct {
	Link  string
	Limit int
	// Since leaves out what was accepted before it: what retention
	// removes, whether or not it has yet.
	Since time.Time
	// Except, when set, leaves out the messages still waiting in the
	// outbox for that room: they reach it live, after the history.
	Except RoomAddr
}

// HistoryStore is a Store that gives a link's recent messages, for the
// rooms whose newcomers see them (the web page, a new Matrix portal).
type HistoryStore interface {
	// History returns up to q.Limit of the last messages of q.Link, in
	// the order they were accepted, each once, with its latest edit
	// applied; deleted messages, and those whose contents were removed,
	// are left out.
	History(ctx context.Context, q HistoryQuery) ([]HistoryEntry, error)
	// Posted records that a message of the history was posted to room
	// as remoteID, as a delivery would: later replies, edits, reactions
	// and deletions of it reach it there natively.
	Posted(ctx context.Context, room RoomAddr, id EventID, remoteID string) error
}
