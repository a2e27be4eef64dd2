package testenv

import (
	"testing"
	"time"
)

// Eventually calls cond, pausing a little longer each time (up to 50 ms),
// until it returns true, and fails the test if that has not happened
// within timeout. what names the awaited event in the failure message.
//
// Wait on the event itself rather than sleeping for a fixed time: a sleep
// is too short on a loaded machine and too long everywhere else.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}
