package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Postgres starts a fresh PostgreSQL server for the test, listening on a
// free port of 127.0.0.1, and returns the DSN of its "postgres" database
// (superuser postgres, no password). It is stopped when the test ends.
// fsync is off: the test's data need not survive a crash of the machine.
func Postgres(t testing.TB) string {
	t.Helper()
	return PostgresServer(t).DSN
}

// PostgresDB is a server Postgres started: its DSN, and its postmaster
// process (whose children are the sessions), for a benchmark that counts
// the store's CPU.
type PostgresDB struct {
	DSN     string
	Process *Process
}

// PostgresServer is Postgres, with the server's process.
func PostgresServer(t testing.TB) *PostgresDB {
	t.Helper()
	bin := postgresBin(t)

	// Not t.TempDir: its parents are private to root, and the server runs
	// as the postgres user when we are root.
	root, err := os.MkdirTemp("", "switchboard-pg-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered before Start's cleanup, so it runs after the server stopped.
	t.Cleanup(func() { os.RemoveAll(root) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = postgresUser(t)
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}

	data := filepath.Join(root, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = root
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, tail(string(out), 4000))
	}

	port := FreePort(t)
	p := &Process{
		Name: filepath.Join(bin, "postgres"),
		Args: []string{
			"-D", data,
			"-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + root,
			"-c", "fsync=off",
			"-c", "full_page_writes=off",
		},
		Dir:        root,
		Ready:      fmt.Sprintf("127.0.0.1:%d", port),
		Credential: cred,
	}
	p.Start(t)
	waitPostgresReady(t, bin, port)
	return &PostgresDB{DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), Process: p}
}

// postgresBin finds the directory of initdb and postgres. Debian keeps
// them in /usr/lib/postgresql/VERSION/bin, off PATH; the newest wins.
func postgresBin(t testing.TB) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	for _, p := range found {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir
		}
	}
	dir := filepath.Dir(Need(t, "postgres"))
	Need(t, filepath.Join(dir, "initdb"))
	return dir
}

func postgresUser(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("PostgreSQL refuses to run as root and there is no postgres user to run it as: %v", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("postgres user: uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// waitPostgresReady waits until the server accepts sessions: it listens
// before it has finished starting up, and refuses logins until then.
func waitPostgresReady(t testing.TB, bin string, port int) {
	t.Helper()
	isready := filepath.Join(bin, "pg_isready")
	if _, err := os.Stat(isready); err != nil {
		return // Ready's TCP check is all we have
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		cmd := exec.Command(isready, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres")
		if cmd.Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres on port %d not ready after 60s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
