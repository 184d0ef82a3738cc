package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	var n int64
	err := st.s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, st.s.q(`INSERT INTO adapter_state (network, key, value) VALUES (?, ?, ?)
			ON CONFLICT (network, key) DO NOTHING`), st.network, key, value)
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
