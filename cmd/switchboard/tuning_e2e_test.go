package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// SWITCHBOARD_RUNTIME_TUNING=off leaves the runtime as the environment
// set it: the timer slack the process inherited, and the scheduler as
// wide as Go makes it, idle or not. Unset (or on), an idle Switchboard
// runs with the wide slack and on one P.
func TestRuntimeTuningOff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary twice")
	}
	bin := buildSwitchboard(t, t.TempDir())
	ownSlack := timerSlackOf(t, "self")
	_, procsFromEnv := os.LookupEnv("GOMAXPROCS")
	for _, c := range []struct {
		setting string
		tuned   bool
	}{{"", true}, {"off", false}} {
		t.Run(tuningEnv+"="+c.setting, func(t *testing.T) {
			dir := t.TempDir()
			conf, httpAddr, _ := defaultsOnFreePorts(t, dir)
			sb := &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir,
				Env: []string{tuningEnv + "=" + c.setting}, Ready: httpAddr}
			sb.Start(t)
			if runtime.GOOS == "linux" {
				got := timerSlackOf(t, strconv.Itoa(sb.Pid()))
				switch {
				case c.tuned && got != timerSlack.Nanoseconds():
					t.Errorf("timer slack %d ns, want %d", got, timerSlack.Nanoseconds())
				case !c.tuned && got != ownSlack:
					t.Errorf("timer slack %d ns, want the %d ns it inherited", got, ownSlack)
				}
			}
			if procsFromEnv || runtime.NumCPU() == 1 {
				t.Log("GOMAXPROCS set in the environment, or one CPU: the scheduler is not governed either way")
				return
			}
			// Idle, the governor narrows to one P at once (startup may
			// widen it; it narrows after two quiet seconds); untuned, it
			// stays as wide as Go made it, over several of its samples.
			deadline := time.Now().Add(5 * time.Second)
			for {
				procs := gomaxprocsOf(t, httpAddr)
				if c.tuned && procs == 1 {
					break
				}
				if !c.tuned && procs == 1 {
					t.Fatalf("GOMAXPROCS narrowed to 1 with %s=off", tuningEnv)
				}
				if time.Now().After(deadline) {
					if c.tuned {
						t.Fatalf("GOMAXPROCS %d after 5 s idle, want 1", procs)
					}
					break
				}
				time.Sleep(4 * procsSample)
			}
		})
	}
}

// timerSlackOf is the timer slack of process pid ("self" for this one),
// in ns, from /proc.
func timerSlackOf(t *testing.T, pid string) int64 {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0
	}
	b, err := os.ReadFile("/proc/" + pid + "/timerslack_ns")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var gomaxprocsMetric = regexp.MustCompile(`(?m)^go_sched_gomaxprocs_threads (\d+)$`)

// gomaxprocsOf is the scheduler's width that Switchboard's /metrics says.
func gomaxprocsOf(t *testing.T, httpAddr string) int {
	t.Helper()
	_, body := testenv.HTTP(t, "GET", fmt.Sprintf("http://%s/metrics", httpAddr), "", nil)
	m := gomaxprocsMetric.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no go_sched_gomaxprocs_threads in /metrics:\n%s", body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
