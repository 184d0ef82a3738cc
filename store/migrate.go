package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema. Steps are applied in order, each
// once and in its own transaction, and recorded in schema_version. Append
// new steps at the end; never edit one that has been released.
type migration struct {
	version int
	name    string
	// up is run on both dialects after filling the {{...}} type
	// placeholders (see types); sqlite or postgres replace it where the
	// dialects differ by more than a type.
	up               []string
	sqlite, postgres []string
}

func (m migration) statements(d dialect) []string {
	stmts := m.up
	switch {
	case d == sqlite && m.sqlite != nil:
		stmts = m.sqlite
	case d == postgres && m.postgres != nil:
		stmts = m.postgres
	}
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = types[d].Replace(s)
	}
	return out
}

var migrations = []migration{
	{
		version: 1,
		name:    "events, remote ids, outbox",
		up: []string{
			`CREATE TABLE events (
				id               TEXT PRIMARY KEY,
				kind             TEXT NOT NULL,
				link             TEXT NOT NULL,
				origin_network   TEXT NOT NULL,
				origin_room      TEXT NOT NULL,
				origin_remote_id TEXT NOT NULL,
				sender_network   TEXT NOT NULL,
				sender_id        TEXT NOT NULL,
				payload          TEXT NOT NULL, -- bridge.Encode; TEXT, not JSONB, which rejects \u0000
				created_at       BIGINT NOT NULL -- unix microseconds
			)`,
			// Deleting an event takes its id maps along; its queued or
			// failed deliveries keep it from being deleted.
			`CREATE TABLE remote_ids (
				network   TEXT NOT NULL,
				room      TEXT NOT NULL,
				remote_id TEXT NOT NULL,
				event_id  TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
				PRIMARY KEY (network, room, remote_id)
			)`,
			// Leading with event_id serves RemoteID as well as
			// (network, room, event_id) would, and also the cascade.
			`CREATE INDEX remote_ids_event ON remote_ids (event_id, network, room)`,
			`CREATE TABLE outbox (
				seq            {{seq}},
				link           TEXT NOT NULL,
				target_network TEXT NOT NULL,
				target_room    TEXT NOT NULL,
				event_id       TEXT NOT NULL REFERENCES events (id)
			)`,
			`CREATE INDEX outbox_target ON outbox (target_network, target_room, seq)`,
			`CREATE TABLE failed (
				seq            BIGINT PRIMARY KEY, -- the outbox seq
				link           TEXT NOT NULL,
				target_network TEXT NOT NULL,
				target_room    TEXT NOT NULL,
				event_id       TEXT NOT NULL REFERENCES events (id),
				reason         TEXT NOT NULL,
				failed_at      BIGINT NOT NULL -- unix microseconds
			)`,
		},
	},
	{
		version: 2,
		name:    "adapter state",
		up: []string{
			`CREATE TABLE adapter_state (
				network TEXT NOT NULL,
				key     TEXT NOT NULL,
				value   TEXT NOT NULL,
				PRIMARY KEY (network, key)
			)`,
		},
	},
	{
		version: 3,
		name:    "outbox queued_at",
		// When an entry was queued (unix microseconds), so that operators see how long a
		// room's queue has been stuck. Entries queued before this
		// migration take their event's acceptance time, which is when
		// they were queued: Accept does both in one transaction.
		// SQLite cannot add a NOT NULL column without a default, nor
		// drop the default later; PostgreSQL drops it so that an insert
		// that forgets the column fails. (No comment inside the SQLite
		// column definition: SQLite splices it into the table's CREATE
		// statement, where it would comment out the closing parenthesis.)
		sqlite: []string{
			`ALTER TABLE outbox ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0`,
			outboxQueuedAtFromEvents,
		},
		postgres: []string{
			`ALTER TABLE outbox ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0`,
			outboxQueuedAtFromEvents,
			`ALTER TABLE outbox ALTER COLUMN queued_at DROP DEFAULT`,
		},
	},
	{
		version: 4,
		name:    "retention",
		// pruned_at is when retention removed the event's contents (unix
		// microseconds), NULL while it has them. The partial indexes hold
		// the events not pruned yet and those pruned, each in the order
		// retention takes them (neither costs an accept more than the one
		// index insert); failed_at serves the failed list's age limit.
		up: []string{
			`ALTER TABLE events ADD COLUMN pruned_at BIGINT`,
			`CREATE INDEX events_unpruned ON events (created_at, id) WHERE pruned_at IS NULL`,
			`CREATE INDEX events_pruned ON events (created_at, id) WHERE pruned_at IS NOT NULL`,
			`CREATE INDEX failed_at ON failed (failed_at)`,
			// Deleting an event looks for it in the failed list (its
			// foreign key). The outbox gets no such index: it would cost
			// every delivery.
			`CREATE INDEX failed_event ON failed (event_id)`,
		},
	},
	{
		version: 5,
		name:    "files",
		// The files users send through Switchboard (the web page), with
		// the message that carries them. No foreign key to it: a file is
		// kept before its message is accepted (the message holds its
		// link), and retention takes a file whose message never came.
		up: []string{
			`CREATE TABLE files (
				id         TEXT PRIMARY KEY,
				event_id   TEXT NOT NULL,
				name       TEXT NOT NULL,
				mime       TEXT NOT NULL,
				data       {{blob}} NOT NULL,
				created_at BIGINT NOT NULL -- unix microseconds
			)`,
			`CREATE INDEX files_event ON files (event_id)`,
			`CREATE INDEX files_created ON files (created_at)`,
		},
	},
	{
		version: 6,
		name:    "history",
		// A link's last messages (store.History), newest first, for the
		// web page and new Matrix portals: without it, the history of a
		// quiet link walks every newer event of the others. Partial, as
		// History reads only events with their contents.
		up: []string{
			`CREATE INDEX events_link ON events (link, created_at, id) WHERE pruned_at IS NULL`,
		},
	},
}

const outboxQueuedAtFromEvents = `UPDATE outbox SET queued_at = (SELECT created_at FROM events WHERE events.id = outbox.event_id)`

// migrateLock is the PostgreSQL advisory lock key that serializes
// migrations of several processes starting at once. SQLite needs none:
// every write transaction begins IMMEDIATE.
const migrateLock = 0x5377_6974_6368_0001

func (s *Store) migrate(ctx context.Context) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at BIGINT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	err = s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := migrations[len(migrations)-1].version
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this build's %d", current, latest)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		applied := false
		err := s.write(ctx, func(tx *sql.Tx) error {
			if err := s.lockMigrations(ctx, tx); err != nil {
				return err
			}
			// Another process may have applied it since we looked.
			var n int
			err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_version WHERE version = ?`), m.version).Scan(&n)
			if err != nil || n > 0 {
				return err
			}
			for _, stmt := range m.statements(s.dialect) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, time.Now().UnixMicro())
			applied = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if applied {
			s.log.Info("applied database migration", "version", m.version, "name", m.name, "dialect", s.dialect)
		}
	}
	return s.incrementalVacuum(ctx)
}

func (s *Store) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if s.dialect != postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+fmt.Sprint(int64(migrateLock))+`)`)
	return err
}
