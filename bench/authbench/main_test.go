package main

import (
	"io"
	"testing"
)

func TestCaseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  summary
		want int
	}{
		{"all 200", summary{Statuses: map[string]int{"200": 10}}, 0},
		{"401 and transport errors", summary{Errors: 2, Statuses: map[string]int{"200": 10, "401": 3}}, 5},
		{"nothing", summary{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &benchCase{got: tc.got}
			if n := c.Errors(); n != tc.want {
				t.Errorf("Errors() = %d, want %d", n, tc.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-d", "0s"}, {"-d", "3m"}, {"-nope"}} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}

func TestMetricValue(t *testing.T) {
	text := "# HELP x\ngatehouse_auth_token_cache_total{result=\"hit\"} 12345\ngatehouse_auth_token_cache_total{result=\"miss\"} 3\n"
	for _, tc := range []struct{ series, want string }{
		{`gatehouse_auth_token_cache_total{result="hit"}`, "12345"},
		{`gatehouse_auth_token_cache_total{result="miss"}`, "3"},
		{`gatehouse_auth_token_cache_total{result="other"}`, "?"},
	} {
		if got := metricValue(text, tc.series); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.series, got, tc.want)
		}
	}
}
