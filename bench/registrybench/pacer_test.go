package main

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// The relay forwards bytes intact both ways, over several connections at
// once, and passes the end of one direction on (half-close) without
// breaking the other.
func TestPacerForwardsIntact(t *testing.T) {
	// An upstream that answers each connection with the sha256 of what it
	// received, once the client has finished sending.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				h := sha256.New()
				n, _ := io.Copy(h, c)
				// Then a body as long as what came, for the way down.
				_, _ = c.Write(h.Sum(nil))
				_, _ = io.Copy(c, newGen(7, n))
			}()
		}
	}()
	p, err := newPacer(ln.Addr().String(), 2000e6)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()

	const conns, size = 4, 1<<20 + 11
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { _ = c.Close() }()
			// A relay that kept an end to itself would hang here.
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			sent := make([]byte, size+i)
			if _, err := io.ReadFull(newGen(uint64(i), int64(len(sent))), sent); err != nil {
				t.Error(err)
				return
			}
			if _, err := c.Write(sent); err != nil {
				t.Error(err)
				return
			}
			_ = c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Error(err)
				return
			}
			sum := sha256.Sum256(sent)
			want, _ := io.ReadAll(newGen(7, int64(len(sent))))
			if len(got) < len(sum) || !bytes.Equal(got[:len(sum)], sum[:]) || !bytes.Equal(got[len(sum):], want) {
				t.Errorf("connection %d: %d bytes back, not the upstream's answer", i, len(got))
			}
		})
	}
	wg.Wait()
}

// HTTP through the relay, as the suite uses it (keep-alive, two requests
// on one connection).
func TestPacerHTTP(t *testing.T) {
	body := bytes.Repeat([]byte("layer "), 200_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	p, err := newPacer(srv.Listener.Addr().String(), 1000e6)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	for range 2 {
		resp, err := http.Get("http://" + p.Addr() + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("through the relay: %d bytes, %v; want %d", len(got), err, len(body))
		}
	}
	if _, err := newPacer(srv.Listener.Addr().String(), 0); err == nil {
		t.Error("a relay at 0 bytes/s started")
	}
}
