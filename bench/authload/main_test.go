package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoadAndReport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"token":"x"}`))
	}))
	defer srv.Close()
	var out strings.Builder
	if err := run([]string{"-url", srv.URL + "/auth", "-c", "2", "-d", "5s", "-n", "50", "-user", "u", "-password", "p"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "requests ok: 50 ") || !strings.Contains(out.String(), "map[200:50]") {
		t.Fatalf("report:\n%s", out.String())
	}
	out.Reset()
	if err := run([]string{"-url", srv.URL, "-c", "1", "-d", "1s", "-n", "3", "-user", "u", "-password", "bad"}, &out); err == nil {
		t.Fatalf("want an error when nothing succeeds:\n%s", out.String())
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(d, .5); p != 50*time.Millisecond {
		t.Errorf("p50 %v", p)
	}
	if p := percentile(d, .99); p != 99*time.Millisecond {
		t.Errorf("p99 %v", p)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-url", "x", "-c", "0"}, {"-url", "x", "-d", "1h"}} {
		if err := run(args, &strings.Builder{}); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}

func TestJSONReport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"token":"x"}`))
	}))
	defer srv.Close()
	var out strings.Builder
	if err := run([]string{"-url", srv.URL + "/auth", "-c", "2", "-d", "5s", "-n", "20", "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if s.OK != 20 || s.Statuses["200"] != 20 || s.RPS <= 0 || s.P99 < s.P50 {
		t.Fatalf("summary %+v", s)
	}
}
