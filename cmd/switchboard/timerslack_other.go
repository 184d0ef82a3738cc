//go:build !linux

package main

// widenTimerSlack is a Linux tuning; see timerslack_linux.go.
func widenTimerSlack() {}
