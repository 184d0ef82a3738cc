// Package testenv starts the real servers integration tests talk to
// (InspIRCd, Mosquitto, PostgreSQL, ...) on free loopback ports, each with
// its own config in a temp dir, and stops them when the test ends.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Need skips the test when a server binary is not installed, unless
// running in CI, where a missing binary is a failure of .ci/run.
func Need(t testing.TB, binary string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (.ci/run should install it): %v", binary, err)
		}
		t.Skipf("%s not installed", binary)
	}
	return path
}

// Process is a server started for a test. Its output goes to a log file
// that is printed when the test fails.
type Process struct {
	t    testing.TB
	Name string
	Args []string
	Dir  string
	Env  []string
	// Ready is a TCP address that accepts connections once the server is up.
	Ready string
	// Credential, if set, runs the process as another user: some servers
	// (PostgreSQL) refuse to run as root.
	Credential *syscall.Credential

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

// Start runs the process and waits until Ready accepts connections. The
// process is stopped when the test ends.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	p.t = t
	if p.logPath == "" {
		f, err := os.CreateTemp(t.TempDir(), filepath.Base(p.Name)+"-*.log")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		p.logPath = f.Name()
		t.Cleanup(func() {
			p.Stop()
			if t.Failed() {
				out, _ := os.ReadFile(p.logPath)
				t.Logf("%s log:\n%s", p.Name, tail(string(out), 4000))
			}
		})
	}
	if err := p.launch(); err != nil {
		t.Fatalf("start %s: %v", p.Name, err)
	}
}

// Output is what the process has written to its log so far.
func (p *Process) Output() string {
	out, _ := os.ReadFile(p.logPath)
	return string(out)
}

func (p *Process) launch() error {
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.Name, p.Args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: p.Credential}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	if p.Ready == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		select {
		case <-done:
			out, _ := os.ReadFile(p.logPath)
			return fmt.Errorf("exited before listening on %s:\n%s", p.Ready, tail(string(out), 4000))
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s after 60s", p.Ready)
		case <-time.After(50 * time.Millisecond):
		}
		if c, err := net.DialTimeout("tcp", p.Ready, time.Second); err == nil {
			c.Close()
			return nil
		}
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 5s) and waits for it.
func (p *Process) Stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	// A frozen process (Freeze) gets the SIGTERM only once it runs again.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Kill ends the process at once, as a crash would.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Freeze stops the process (SIGSTOP) without ending it: its sockets stay
// open but it answers nothing, as a hung or paused machine would; Thaw
// resumes it.
func (p *Process) Freeze() { p.signal(syscall.SIGSTOP) }

// Thaw resumes a process Freeze stopped (SIGCONT).
func (p *Process) Thaw() { p.signal(syscall.SIGCONT) }

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Restart stops the process and starts it again with the same arguments.
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	if err := p.launch(); err != nil {
		p.t.Fatalf("restart %s: %v", p.Name, err)
	}
}

// WriteFile writes a config file into dir and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[strings.IndexByte(s[len(s)-n:], '\n')+len(s)-n+1:]
}

// Pid is the process id of the running process, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// CPUTime is the CPU time this process has used, user and system: what a
// benchmark reports per operation where wall time would count waiting
// for the disk or the network.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPU reports, as unit, the CPU time this process used since start
// (a CPUTime), per each of n operations.
func ReportCPU(b *testing.B, start time.Duration, n int, unit string) {
	b.ReportMetric(float64((CPUTime()-start).Microseconds())/float64(n), unit)
}
