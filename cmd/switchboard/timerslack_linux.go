package main

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// timerSlack is how late Linux may fire switchboard's timers, so that it
// can wake the process for several at once. The default, 50 µs, makes the
// Go runtime's monitor thread wake every 20–70 µs while any goroutine is
// busy (it sleeps 20 µs between checks for a while after each wakeup from
// idle), several times per relayed message; on a virtual machine each
// wakeup costs tens of µs of CPU. With 5 ms it wakes about once per
// message: a relayed message costs a third less CPU, and 1 ms would save
// a tenth less than that (see the relay benchmarks). Nothing in a chat
// bridge needs its timers to within a few milliseconds: the shortest are
// the 20 ms before delivery records are flushed and pion's 200 ms between
// ICE checks.
const timerSlack = 5 * time.Millisecond

const (
	prSetTimerSlack = 29 // PR_SET_TIMERSLACK
	prGetTimerSlack = 30 // PR_GET_TIMERSLACK
)

// widenTimerSlack restarts the process, with the same pid, arguments and
// environment, once its timer slack is timerSlack. A thread inherits the
// slack of the thread that creates it, and the runtime starts its monitor
// before main runs, so setting it here would miss that thread; a new
// program image starts all its threads from this one. It returns, changing
// nothing, if the slack is already that wide or cannot be changed.
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
