package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startRaw serves h with the given timeouts and returns its address.
func startRaw(t *testing.T, h http.Handler, bodyIdle time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{Addr: "127.0.0.1:0", Handler: h, ReadTimeout: -1, WriteTimeout: -1, BodyReadTimeout: bodyIdle, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s.Addr().String()
}

// readUntilClosed reads c until the server closes it and reports whether
// that happened within limit.
func readUntilClosed(t *testing.T, c net.Conn, limit time.Duration) (string, bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), false
	}
	return string(b), true
}

func TestBodyReadTimeoutClosesStalledBody(t *testing.T) {
	// The handler answers without reading the body, as an access check
	// does; net/http then drains the announced body before answering.
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	for _, tc := range []struct {
		name string
		idle time.Duration
		want bool // closed within the limit
	}{
		{"timeout", 200 * time.Millisecond, true},
		{"no timeout", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startRaw(t, h, tc.idle)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprint(c, "POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
			start := time.Now()
			_, closed := readUntilClosed(t, c, 3*time.Second)
			if closed != tc.want {
				t.Fatalf("connection closed within 3s = %v, want %v (after %v)", closed, tc.want, time.Since(start))
			}
		})
	}
}

func TestBodyReadTimeoutLetsFlowingUploadFinish(t *testing.T) {
	got := make(chan int64, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		StreamRequest(w, r)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		got <- n
	})
	addr := startRaw(t, h, 300*time.Millisecond)
	pr, pw := io.Pipe()
	go func() {
		// 8 pieces 100 ms apart: 800 ms in all, far past the idle timeout,
		// but never idle for long.
		for range 8 {
			time.Sleep(100 * time.Millisecond)
			_, _ = pw.Write([]byte(strings.Repeat("x", 1000)))
		}
		_ = pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPatch, "http://"+addr+"/upload", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := <-got; n != 8000 {
		t.Fatalf("server read %d bytes, want 8000", n)
	}
}

func TestStreamRequestLetsLongDownloadFinish(t *testing.T) {
	// A response written for longer than the body timeout: a read deadline
	// left on the connection would cancel the request's context (net/http
	// reads in the background while a handler writes).
	for _, tc := range []struct {
		name   string
		stream bool
		want   int
	}{
		{"stream", true, 6},
		{"limited", false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.stream {
					StreamRequest(w, r)
				}
				for range 6 {
					if r.Context().Err() != nil {
						return
					}
					_, _ = io.WriteString(w, "chunk\n")
					_ = http.NewResponseController(w).Flush()
					time.Sleep(100 * time.Millisecond)
				}
			})
			addr := startRaw(t, h, 200*time.Millisecond)
			resp, err := http.Get("http://" + addr + "/blob")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			n := 0
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				n++
			}
			if tc.want >= 0 && n != tc.want {
				t.Fatalf("read %d chunks, want %d", n, tc.want)
			}
			if tc.want < 0 && n >= 6 {
				t.Fatalf("read all %d chunks; the read deadline should have cancelled the request", n)
			}
		})
	}
}

func TestLimitRequestCutsTrickle(t *testing.T) {
	errc := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		LimitRequest(w, r, 300*time.Millisecond)
		_, err := io.Copy(io.Discard, r.Body)
		errc <- err
	})
	// The idle timeout alone (1 s) would let a piece every 100 ms through.
	addr := startRaw(t, h, time.Second)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "PUT /manifest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	go func() {
		for range 20 {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	select {
	case err := <-errc:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("body read error = %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the trickled body was not cut off")
	}
}
