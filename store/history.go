package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/switchboard-chat/switchboard/bridge"
)

var _ bridge.HistoryStore = (*Store)(nil)

// maxHistoryPage bounds the rows a page of History reads.
const maxHistoryPage = 8192

// History implements bridge.HistoryStore. It reads the link's messages,
// edits and deletions newest first, a page at a time, until it has
// q.Limit messages: an edit or deletion comes after its message, so it is
// read before it. Each event is stored once, with its origin room, so
// every message of the link is read once whichever room it was said in.
// The pages walk the events_link index (migration 5) backwards.
func (s *Store) History(ctx context.Context, q bridge.HistoryQuery) ([]bridge.HistoryEntry, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	if q.Except != (bridge.RoomAddr{}) {
		// The deliveries done but not yet recorded would still count
		// as waiting, and their messages be left out.
		if err := s.writeExec(ctx, func(txExec) error { return nil }); err != nil {
			return nil, fmt.Errorf("store: history of %s: %w", q.Link, err)
		}
	} else if err := s.visible(ctx); err != nil {
		return nil, fmt.Errorf("store: history of %s: %w", q.Link, err)
	}
	var since int64
	if !q.Since.IsZero() {
		since = q.Since.UnixMicro()
	}
	// Only events with their contents: retention took those of the
	// others, and an event is pruned only once older than what retention
	// shows (or, a message, once deleted); pruned_at IS NULL is also what
	// the partial index events_link holds. What still waits for Except is
	// left out.
	query := s.q(`SELECT id, kind, payload, created_at FROM events
		WHERE pruned_at IS NULL AND link = ? AND created_at >= ? AND (created_at, id) < (?, ?)
			AND kind IN ('message', 'edit', 'delete')
			AND (kind <> 'message' OR id NOT IN
				(SELECT event_id FROM outbox WHERE target_network = ? AND target_room = ?))
		ORDER BY created_at DESC, id DESC LIMIT CAST(? AS INTEGER)`)
	var (
		out     []bridge.HistoryEntry
		edits   = map[bridge.EventID]*bridge.Edit{} // the latest of each message
		deleted = map[bridge.EventID]bool{}
		// The cursor starts past anything stored.
		beforeAt, beforeID = int64(1 << 62), ""
		page               = max(64, 2*q.Limit)
	)
	for len(out) < q.Limit {
		rows, err := s.r.QueryContext(ctx, query, q.Link, since, beforeAt, beforeID, q.Except.Network, q.Except.Room, page)
		if err != nil {
			return nil, fmt.Errorf("store: history of %s: %w", q.Link, err)
		}
		n := 0
		for rows.Next() && len(out) < q.Limit {
			var id, kind, payload string
			if err := rows.Scan(&id, &kind, &payload, &beforeAt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: history of %s: %w", q.Link, err)
			}
			beforeID = id
			n++
			ev, err := bridge.Decode(bridge.Kind(kind), []byte(payload))
			if err != nil {
				s.log.Warn("history: event left out", "event", id, "err", err)
				continue
			}
			switch ev := ev.(type) {
			case *bridge.Delete:
				deleted[ev.Target.Event] = true
			case *bridge.Edit:
				if _, later := edits[ev.Target.Event]; !later && ev.Target.Event != "" {
					edits[ev.Target.Event] = ev
				}
			case *bridge.Message:
				if deleted[ev.ID] || ev.Head().To != nil {
					continue
				}
				e := bridge.HistoryEntry{Message: ev}
				if ed := edits[ev.ID]; ed != nil {
					ev.Text, ev.HTML, e.Edited = ed.Text, ed.HTML, ed.Time
				}
				out = append(out, e)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: history of %s: %w", q.Link, err)
		}
		if n < page && len(out) < q.Limit {
			break // no more
		}
		// Edits and deletions fill pages: the next reads more at once.
		page = min(2*page, maxHistoryPage)
	}
	slices.Reverse(out)
	return out, nil
}

// Posted implements bridge.HistoryStore. A remote id the room already
// uses keeps its first mapping, as with a delivery.
func (s *Store) Posted(ctx context.Context, room bridge.RoomAddr, id bridge.EventID, remoteID string) error {
	if s.dialect == sqlite {
		// An echo of the post is a duplicate (as in Delivered).
		s.remember(s.seen.remoteKey(remoteKey{room.Network, room.Room, remoteID}))
	}
	err := s.writeExec(ctx, func(tx txExec) error {
		_, err := tx.exec(s.st.insertRemote, room.Network, room.Room, remoteID, string(id))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s posted to %s as %s: %w", id, room, remoteID, err)
	}
	return nil
}
