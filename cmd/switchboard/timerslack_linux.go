package main

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// timerSlack is how late Linux may fire switchboard's timers, so that it
// can wake the process for several at once. The default, 50 µs, makes the
// Go runtime's monitor thread (sysmon) wake every 20–70 µs while any
// goroutine is busy (it sleeps 20 µs between checks for a while after
// each wakeup from idle), several times per relayed message; on a virtual
// machine each wakeup costs tens of µs of CPU. With 1 ms a relayed
// message cost about 220 µs less CPU, 5 ms saved another 60 µs, and 20 ms,
// with which one monitor wakeup serves several messages under load,
// another 55 µs and a context switch per message (the relay benchmarks,
// alternating runs). Nothing in a chat bridge needs its timers to within
// 20 ms: the shortest are the store's 20 ms sync window and delivery
// record delay, which only bound how long work waits to be batched, and
// pion's 200 ms between ICE checks. The price: with one P, a goroutine
// blocked in a system call (an fdatasync on a slow disk) holds it until
// the monitor next looks, up to about 40 ms rather than 10.
const timerSlack = 20 * time.Millisecond

const (
	prSetTimerSlack = 29 // PR_SET_TIMERSLACK
	prGetTimerSlack = 30 // PR_GET_TIMERSLACK
)

// widenTimerSlack restarts the process, with the same pid, arguments and
// environment, once its timer slack is timerSlack. A thread inherits the
// slack of the thread that creates it, and the runtime starts its monitor
// before main runs, so setting it here would miss that thread; a new
// program image starts all its threads from this one. It returns, changing
// nothing, if the slack is already that wide or cannot be changed. main
// does not call it when SWITCHBOARD_RUNTIME_TUNING=off (see tuningEnv).
func widenTimerSlack() {
	runtime.LockOSThread() // prctl and execve act on this thread only
	defer runtime.UnlockOSThread()
	current, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0)
	if errno != 0 || current >= uintptr(timerSlack) {
		return
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(timerSlack), 0); errno != 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	syscall.Exec(exe, os.Args, os.Environ()) // returns only on failure
}
