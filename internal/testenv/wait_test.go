package testenv

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventuallyReturnsOnceTrue(t *testing.T) {
	calls := 0
	Eventually(t, 5*time.Second, "the third call", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

// recorder is a testing.TB that records Fatalf instead of stopping the test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

func TestEventuallyFailsAtTheDeadline(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	Eventually(r, 100*time.Millisecond, "the sky to fall", func() bool { return false })
	if took := time.Since(start); took < 100*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %v, want about 100ms", took)
	}
	if !strings.Contains(r.fatal, "the sky to fall") || !strings.Contains(r.fatal, "100ms") {
		t.Errorf("failure message %q does not name the event and the timeout", r.fatal)
	}
}
