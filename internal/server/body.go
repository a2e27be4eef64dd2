package server

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultBodyReadTimeout is the longest a request body may pause between
// two reads that return data.
const DefaultBodyReadTimeout = time.Minute

// bodyTimer keeps a connection's read deadline "idle" seconds ahead of the
// last body read that returned data, never past cap. It makes a request
// body that stops arriving end the request (and the connection) while a
// long upload that keeps sending is never cut off.
type bodyTimer struct {
	rc   *http.ResponseController
	idle time.Duration

	mu    sync.Mutex
	cap   time.Time // zero: no absolute limit
	armed time.Time // when the deadline was last moved
}

func (t *bodyTimer) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armAt(time.Now())
}

// rearm moves the deadline after a read that returned data, unless it was
// moved less than an eighth of the idle time ago: an upload reads in 32 KiB
// pieces, and the deadline need not follow every one of them.
func (t *bodyTimer) rearm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Sub(t.armed) < t.idle/8 {
		return
	}
	t.armAt(now)
}

func (t *bodyTimer) armAt(now time.Time) {
	t.armed = now
	d := now.Add(t.idle)
	if !t.cap.IsZero() && t.cap.Before(d) {
		d = t.cap
	}
	_ = t.rc.SetReadDeadline(d)
}

type bodyTimerKey struct{}

// timedBody re-arms the timer after reads that return data (see rearm).
type timedBody struct {
	io.ReadCloser
	t *bodyTimer
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.t.rearm()
	}
	return n, err
}

// withBodyTimeout wraps h so that every request body is read under the idle
// timeout. total, when positive, is the server's ReadTimeout, which the idle
// deadline never extends.
func withBodyTimeout(h http.Handler, idle, total time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &bodyTimer{rc: http.NewResponseController(w), idle: idle}
		if total > 0 {
			t.cap = time.Now().Add(total)
		}
		// Armed before the handler runs: a body that never comes, or one
		// net/http drains after an early answer (a 401 to a request that
		// announced a body), cannot hold the connection longer than idle.
		t.arm()
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &timedBody{ReadCloser: r.Body, t: t}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyTimerKey{}, t)))
	})
}

// LimitRequest bounds what is left of the request: its body must have
// arrived, and its response been written, within d. Handlers call it for
// requests that carry no bulk data. Without the server's body timer (a
// handler run outside Server) it sets the connection deadlines directly.
func LimitRequest(w http.ResponseWriter, r *http.Request, d time.Duration) {
	deadline := time.Now().Add(d)
	rc := http.NewResponseController(w)
	if t, ok := r.Context().Value(bodyTimerKey{}).(*bodyTimer); ok {
		t.mu.Lock()
		if t.cap.IsZero() || deadline.Before(t.cap) {
			t.cap = deadline
		}
		t.mu.Unlock()
		t.arm()
	} else {
		_ = rc.SetReadDeadline(deadline)
	}
	_ = rc.SetWriteDeadline(deadline)
}

// StreamRequest lifts the limits LimitRequest sets, for requests that move
// blob data and may take as long as they need: the response has no write
// deadline, and the body (if there is one) only the idle timeout between
// reads. A request without a body has no read deadline at all, because
// net/http reads the connection in the background while a response is
// written and a deadline there would cancel a long download.
func StreamRequest(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	t, ok := r.Context().Value(bodyTimerKey{}).(*bodyTimer)
	if !ok || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		_ = rc.SetReadDeadline(time.Time{})
		return
	}
	t.mu.Lock()
	t.cap = time.Time{}
	t.mu.Unlock()
	t.arm()
}
