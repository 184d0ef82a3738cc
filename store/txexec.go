package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// txExec runs the prepared statements of one write transaction: Accept,
// Failed and the delivery records are written through it.
type txExec interface {
	exec(st *sql.Stmt, args ...any) (sql.Result, error)
	// queryString scans the first column of the first row into dest.
	queryString(st *sql.Stmt, dest *string, args ...any) error
}

// sqlTx is a txExec on a *sql.Tx (PostgreSQL, and write on SQLite).
type sqlTx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (t sqlTx) exec(st *sql.Stmt, args ...any) (sql.Result, error) {
	return t.tx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
}

func (t sqlTx) queryString(st *sql.Stmt, dest *string, args ...any) error {
	return t.tx.StmtContext(t.ctx, st).QueryRowContext(t.ctx, args...).Scan(dest)
}

// rawTx is a txExec on the SQLite writer's driver connection, inside
// sql.Conn.Raw. A *sql.Tx costs a goroutine per transaction (and
// modernc.org/sqlite one per statement under a cancelable context), and
// database/sql wraps every statement; on the hot path of a relayed
// message that was more than the statements themselves.
type rawTx struct {
	s  *Store
	dc *rawConn
}

// rawConn is the writer's driver connection with its statements, by
// query, prepared on first use.
type rawConn struct {
	conn  any // the driver.Conn
	stmts map[string]driver.Stmt
}

// rawStmts is keyed by the driver connection: database/sql may replace
// the writer's connection after an error.
type rawStmts struct {
	mu   sync.Mutex
	conn *rawConn
}

func (t rawTx) stmt(st *sql.Stmt) (driver.Stmt, error) {
	q, ok := t.s.queries[st]
	if !ok {
		return nil, errors.New("store: statement not prepared for the writer")
	}
	return t.prepared(q)
}

func (t rawTx) prepared(q string) (driver.Stmt, error) {
	if ds, ok := t.dc.stmts[q]; ok {
		return ds, nil
	}
	ds, err := t.dc.conn.(driver.ConnPrepareContext).PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	t.dc.stmts[q] = ds
	return ds, nil
}

// run runs a statement without arguments or rows: BEGIN, COMMIT, ROLLBACK.
func (t rawTx) run(q string) error {
	ds, err := t.prepared(q)
	if err == nil {
		_, err = ds.(driver.StmtExecContext).ExecContext(context.Background(), nil)
	}
	return err
}

func named(args []any) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return nv
}

// The statements run with a context that is never canceled: see
// stmtContext.
func (t rawTx) exec(st *sql.Stmt, args ...any) (sql.Result, error) {
	ds, err := t.stmt(st)
	if err != nil {
		return nil, err
	}
	return ds.(driver.StmtExecContext).ExecContext(context.Background(), named(args))
}

func (t rawTx) queryString(st *sql.Stmt, dest *string, args ...any) error {
	ds, err := t.stmt(st)
	if err == nil {
		*dest, err = first[string](ds, args)
	}
	return err
}

// queryInt is queryString for an integer.
func (t rawTx) queryInt(st *sql.Stmt, dest *int64, args ...any) error {
	ds, err := t.stmt(st)
	if err == nil {
		*dest, err = first[int64](ds, args)
	}
	return err
}

// first runs a query and returns the first column of its first row.
func first[T string | int64](ds driver.Stmt, args []any) (T, error) {
	var zero T
	rows, err := ds.(driver.StmtQueryContext).QueryContext(context.Background(), named(args))
	if err != nil {
		return zero, err
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(vals); errors.Is(err, io.EOF) {
		return zero, sql.ErrNoRows
	} else if err != nil {
		return zero, err
	}
	v := vals[0]
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	got, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("store: scan %T into %T", vals[0], zero)
	}
	return got, nil
}

// writeExec runs fn in a write transaction, together with the delivery
// records waiting for one, and returns once it is committed durably: on
// SQLite in the writer's open batch on its driver connection, otherwise
// as write does.
func (s *Store) writeExec(ctx context.Context, fn func(txExec) error) error {
	commit, err := s.writeCommit(ctx, fn)
	if err != nil {
		return err
	}
	return s.wal.wait(commit)
}

// writeCommit is writeExec up to the commit, returning the write's number
// for s.wal.wait. On SQLite the write joins the open batch, which the
// next sync commits, unless the store syncs nothing itself: then it is
// committed at once.
func (s *Store) writeCommit(ctx context.Context, fn func(txExec) error) (commit uint64, err error) {
	if s.dialect != sqlite {
		return 0, s.write(ctx, func(tx *sql.Tx) error { return fn(sqlTx{ctx, tx}) })
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Waiting for the only writer connection may be canceled; the
	// transaction, once begun, runs to its end (see stmtContext). The
	// writer is free for the next write as soon as this one has joined the
	// batch, while it waits for its sync: the same transaction and sync
	// may then cover both.
	err = s.onWriter(ctx, func(t rawTx) error {
		if err := s.join(t, s.delivered.take(), fn); err != nil {
			return err
		}
		if s.wal == nil {
			// The batch holds this write alone, and its caller hears that
			// it failed: it is not to be redone.
			if err := s.commit(t); err != nil {
				s.forget(false)
				return err
			}
			return nil
		}
		commit = s.wal.committed()
		return nil
	})
	return commit, err
}

// lockWriter takes the batch (s.wmu) and the writer's connection, in that
// order, which every holder of both keeps: an Accept holds the batch
// alone as long as it needs no statement. Call unlock when done.
func (s *Store) lockWriter(ctx context.Context) (conn *sql.Conn, unlock func(), err error) {
	s.wmu.Lock()
	return s.writerConn(ctx)
}

// writerConn is lockWriter for a caller that holds s.wmu already; unlock
// releases both, and on an error s.wmu is released.
func (s *Store) writerConn(ctx context.Context) (conn *sql.Conn, unlock func(), err error) {
	conn, err = s.w.Conn(ctx)
	if err != nil {
		s.wmu.Unlock()
		return nil, nil, err
	}
	return conn, func() { conn.Close(); s.wmu.Unlock() }, nil
}

// onWriter runs fn with the batch and the writer's driver connection.
func (s *Store) onWriter(ctx context.Context, fn func(rawTx) error) error {
	conn, unlock, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.onConn(conn, fn)
}

// onConn runs fn on conn, the writer's connection, with the batch held.
func (s *Store) onConn(conn *sql.Conn, fn func(rawTx) error) error {
	return conn.Raw(func(dc any) error { return fn(rawTx{s: s, dc: s.raw.forConn(dc)}) })
}

// commitBatch commits the writer's open batch, for walSync before it
// syncs the log.
func (s *Store) commitBatch() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Not visible: a delivery record may have come after the last commit
	// cleared pending, and it is this commit's to take along.
	return s.onWriter(ctx, s.commit)
}

// forConn returns the statements of driver connection dc, forgetting
// those of a connection replaced since.
func (r *rawStmts) forConn(dc any) *rawConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil || r.conn.conn != dc {
		r.conn = &rawConn{conn: dc, stmts: map[string]driver.Stmt{}}
	}
	return r.conn
}

// close closes the driver statements; called at Close, with no write in
// progress.
func (r *rawStmts) close(w *sql.DB) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		return
	}
	conn, err := w.Conn(context.Background())
	if err == nil {
		conn.Raw(func(dc any) error {
			if dc == r.conn.conn {
				for _, ds := range r.conn.stmts {
					ds.Close()
				}
			}
			return nil
		})
		conn.Close()
	}
	r.conn = nil
}
