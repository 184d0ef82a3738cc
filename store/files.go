package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

var _ bridge.FileStore = (*Store)(nil)

// PutFile implements bridge.FileStore: it keeps f (its id unique).
func (s *Store) PutFile(ctx context.Context, f bridge.File) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO files (id, event_id, name, mime, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
			f.ID, string(f.Event), f.Name, f.Mime, f.Data, f.Time.UnixMicro())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: keep file %s: %w", f.ID, err)
	}
	return nil
}

// File implements bridge.FileStore.
func (s *Store) File(ctx context.Context, id string) (bridge.File, error) {
	f := bridge.File{ID: id}
	var event string
	var at int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT event_id, name, mime, data, created_at FROM files WHERE id = ?`), id).
		Scan(&event, &f.Name, &f.Mime, &f.Data, &at)
	if err != nil {
		return bridge.File{}, fmt.Errorf("store: file %s: %w", id, notFound(err))
	}
	f.Event, f.Time = bridge.EventID(event), time.UnixMicro(at).UTC()
	return f, nil
}

// pruneFiles deletes the files older than r.Messages whose message's
// contents are gone (or whose message never came): a file goes with the
// words of its message, and stays while a delivery of it waits.
func (s *Store) pruneFiles(ctx context.Context, r Retention, now time.Time, st *PruneStats) error {
	if r.Messages <= 0 {
		return nil
	}
	cutoff := now.Add(-r.Messages).UnixMicro()
	query := s.q(`DELETE FROM files WHERE id IN (SELECT f.id FROM files f LEFT JOIN events e ON e.id = f.event_id
		WHERE f.created_at < ? AND (e.id IS NULL OR e.pruned_at IS NOT NULL) ORDER BY f.created_at LIMIT ?)`)
	for {
		n, full, err := s.pruneStep(ctx, st, func(tx *sql.Tx, limit int) (int, error) {
			return execCount(ctx, tx, query, cutoff, limit)
		})
		st.Files += n
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		if !full {
			return nil
		}
	}
}

// deleteFilesOf deletes the files a message carries, in the transaction
// that removes its contents.
func (s *Store) deleteFilesOf(ctx context.Context, tx *sql.Tx, id bridge.EventID) error {
	_, err := tx.ExecContext(ctx, s.q(`DELETE FROM files WHERE event_id = ?`), string(id))
	return err
}
