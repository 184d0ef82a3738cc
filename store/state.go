package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"unicode/utf8"
)

// State is one network's durable key-value state (adapters.State): what an
// adapter must remember across restarts beyond the event maps, such as the
// transactions a homeserver already pushed or the rooms it created.
type State struct {
	s       *Store
	network string
}

// State returns the state of one network.
func (s *Store) State(network string) *State { return &State{s: s, network: network} }

// Get returns the value of key, and whether it is set.
func (st *State) Get(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := st.s.r.QueryRowContext(ctx, st.s.q(`SELECT value FROM adapter_state WHERE network = ? AND key = ?`), st.network, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: state %s/%s: %w", st.network, key, err)
	}
	return v, true, nil
}

// Put sets key to value.
func (st *State) Put(ctx context.Context, key, value string) error {
	err := st.s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, st.s.q(`INSERT INTO adapter_state (network, key, value) VALUES (?, ?, ?)
			ON CONFLICT (network, key) DO UPDATE SET value = excluded.value`), st.network, key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: state %s/%s: %w", st.network, key, err)
	}
	return nil
}

// PutIfAbsent sets key to value unless it is set, and reports whether it
// did: true the first time, false for every later call with the same key.
func (st *State) PutIfAbsent(ctx context.Context, key, value string) (bool, error) {
	return st.changeRow(ctx, key, `INSERT INTO adapter_state (network, key, value) VALUES (?, ?, ?)
			ON CONFLICT (network, key) DO NOTHING`, st.network, key, value)
}

// CompareAndPut sets key to value if it is still old (if !had: if it is
// still unset), and reports whether it did: a read, change and write
// that another process sharing the store may run at the same time
// (cluster mode) never undoes the other's write; on false, read again.
func (st *State) CompareAndPut(ctx context.Context, key, old string, had bool, value string) (bool, error) {
	if !had {
		return st.PutIfAbsent(ctx, key, value)
	}
	// PostgreSQL re-reads the row a concurrent update committed before
	// it checks the value.
	return st.changeRow(ctx, key, `UPDATE adapter_state SET value = ? WHERE network = ? AND key = ? AND value = ?`, value, st.network, key, old)
}

// changeRow runs one write of key's row and reports whether it changed
// the row.
func (st *State) changeRow(ctx context.Context, key, query string, args ...any) (bool, error) {
	var n int64
	err := st.s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, st.s.q(query), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: state %s/%s: %w", st.network, key, err)
	}
	return n > 0, nil
}

// Delete removes key.
func (st *State) Delete(ctx context.Context, key string) error {
	err := st.s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, st.s.q(`DELETE FROM adapter_state WHERE network = ? AND key = ?`), st.network, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: state %s/%s: %w", st.network, key, err)
	}
	return nil
}

// scanPage is how many rows Scan reads before it hands them to fn.
const scanPage = 256

// Scan calls fn with every key that starts with prefix and its value, in
// key order, until fn returns false. The rows are read a page at a time
// and handed over after the page is closed, so fn may write to the state
// (delete what it is shown, say) without holding a read open meanwhile.
func (st *State) Scan(ctx context.Context, prefix string, fn func(key, value string) bool) error {
	// substr, not LIKE (case-insensitive on SQLite, with wildcards to
	// escape) nor a key range (PostgreSQL may collate by locale, where
	// the keys starting with prefix need not be one range).
	const match = `SELECT key, value FROM adapter_state WHERE network = ? AND substr(key, 1, ?) = ?`
	n := utf8.RuneCountInString(prefix)
	var (
		last  string
		first = true
	)
	for {
		var (
			rows *sql.Rows
			err  error
		)
		if first {
			rows, err = st.s.r.QueryContext(ctx, st.s.q(match+` ORDER BY key LIMIT ?`), st.network, n, prefix, scanPage)
		} else {
			rows, err = st.s.r.QueryContext(ctx, st.s.q(match+` AND key > ? ORDER BY key LIMIT ?`), st.network, n, prefix, last, scanPage)
		}
		if err != nil {
			return fmt.Errorf("store: state %s/%s*: %w", st.network, prefix, err)
		}
		page, err := readPairs(rows)
		if err != nil {
			return fmt.Errorf("store: state %s/%s*: %w", st.network, prefix, err)
		}
		for _, p := range page {
			if !fn(p[0], p[1]) {
				return nil
			}
		}
		if len(page) < scanPage {
			return nil
		}
		first, last = false, page[len(page)-1][0]
	}
}

// readPairs reads and closes rows of two text columns.
func readPairs(rows *sql.Rows) ([][2]string, error) {
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var p [2]string
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
