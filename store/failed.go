package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

var _ bridge.FailedStore = (*Store)(nil)

// FailedDeliveries implements bridge.FailedStore.
func (s *Store) FailedDeliveries(ctx context.Context, limit int) ([]bridge.FailedDelivery, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: failed deliveries: limit %d is not positive", limit)
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT f.seq, f.link, f.target_network, f.target_room, f.reason, f.failed_at, e.kind, e.payload
		FROM failed f JOIN events e ON e.id = f.event_id ORDER BY f.seq DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("store: failed deliveries: %w", err)
	}
	defer rows.Close()
	var out []bridge.FailedDelivery
	for rows.Next() {
		var (
			f             bridge.FailedDelivery
			at            int64
			kind, payload string
		)
		if err := rows.Scan(&f.Seq, &f.Link, &f.Target.Network, &f.Target.Room, &f.Reason, &at, &kind, &payload); err != nil {
			return nil, fmt.Errorf("store: failed deliveries: %w", err)
		}
		if f.Event, err = bridge.Decode(bridge.Kind(kind), []byte(payload)); err != nil {
			return nil, fmt.Errorf("store: failed delivery %d: %w", f.Seq, err)
		}
		f.FailedAt = time.UnixMicro(at).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: failed deliveries: %w", err)
	}
	return out, nil
}

// Requeue implements bridge.FailedStore. The entry gets a new seq: it
// joins the end of its room's queue.
func (s *Store) Requeue(ctx context.Context, seq int64) (bridge.Queued, error) {
	var q bridge.Queued
	err := s.write(ctx, func(tx *sql.Tx) error {
		var kind, payload string
		err := tx.QueryRowContext(ctx, s.q(`SELECT f.link, f.target_network, f.target_room, e.kind, e.payload
			FROM failed f JOIN events e ON e.id = f.event_id WHERE f.seq = ?`), seq).
			Scan(&q.Link, &q.Target.Network, &q.Target.Room, &kind, &payload)
		if err != nil {
			return notFound(err)
		}
		if q.Event, err = bridge.Decode(bridge.Kind(kind), []byte(payload)); err != nil {
			return err
		}
		if s.dialect == postgres {
			// As in Accept: the room's seqs become visible in order.
			if _, err := tx.StmtContext(ctx, s.st.lockTargets).ExecContext(ctx, lockKeys([]bridge.RoomAddr{q.Target})); err != nil {
				return fmt.Errorf("lock target: %w", err)
			}
		}
		err = tx.QueryRowContext(ctx, s.q(`INSERT INTO outbox (link, target_network, target_room, event_id, queued_at)
			VALUES (?, ?, ?, ?, ?) RETURNING seq`), q.Link, q.Target.Network, q.Target.Room, string(q.Event.Head().ID), time.Now().UnixMicro()).
			Scan(&q.Seq)
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		if s.dialect == sqlite {
			// The router skips what comes after in a room under a lower
			// seq: the seqs this process hands out go on above this one,
			// from a block reserved above it. (write holds s.wmu.)
			s.batch.seq, s.batch.reserved = max(s.batch.seq, q.Seq), 0
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM failed WHERE seq = ?`), seq)
		return err
	})
	if err != nil {
		return bridge.Queued{}, fmt.Errorf("store: requeue failed delivery %d: %w", seq, err)
	}
	return q, nil
}

// Discard implements bridge.FailedStore.
func (s *Store) Discard(ctx context.Context, seq int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM failed WHERE seq = ?`), seq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return bridge.ErrNotFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, bridge.ErrNotFound) {
		return fmt.Errorf("store: discard failed delivery %d: %w", seq, err)
	}
	return err
}

// RoomFailed is how many deliveries to one room failed for good.
type RoomFailed struct {
	Room  bridge.RoomAddr
	Count int
}

// FailedRooms counts the failed list per room, sorted by room.
func (s *Store) FailedRooms(ctx context.Context) ([]RoomFailed, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT target_network, target_room, COUNT(*) FROM failed
		GROUP BY target_network, target_room ORDER BY target_network, target_room`)
	if err != nil {
		return nil, fmt.Errorf("store: failed rooms: %w", err)
	}
	defer rows.Close()
	var out []RoomFailed
	for rows.Next() {
		var f RoomFailed
		if err := rows.Scan(&f.Room.Network, &f.Room.Room, &f.Count); err != nil {
			return nil, fmt.Errorf("store: failed rooms: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: failed rooms: %w", err)
	}
	return out, nil
}
