package server

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify is a service manager's end: a unix datagram socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	t.Run("no socket", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		if sent, err := Notify(NotifyReady); sent || err != nil {
			t.Errorf("Notify without NOTIFY_SOCKET = %v, %v; want false, nil", sent, err)
		}
	})
	t.Run("path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "notify")
		c := listenNotify(t, path)
		t.Setenv("NOTIFY_SOCKET", path)
		if sent, err := Notify(NotifyReady); !sent || err != nil {
			t.Fatalf("Notify = %v, %v", sent, err)
		}
		if got := readNotify(t, c); got != "READY=1" {
			t.Errorf("received %q", got)
		}
		if _, err := Notify(NotifyReloading()); err != nil {
			t.Fatal(err)
		}
		got := readNotify(t, c)
		if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || len(got) <= len("RELOADING=1\nMONOTONIC_USEC=") {
			t.Errorf("reloading message %q", got)
		}
	})
	t.Run("abstract", func(t *testing.T) {
		name := "gatehouse-notify-test-" + filepath.Base(t.TempDir())
		c := listenNotify(t, "\x00"+name)
		t.Setenv("NOTIFY_SOCKET", "@"+name)
		if _, err := Notify(NotifyStopping); err != nil {
			t.Fatal(err)
		}
		if got := readNotify(t, c); got != "STOPPING=1" {
			t.Errorf("received %q", got)
		}
	})
	t.Run("bad", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "relative/path")
		if _, err := Notify(NotifyReady); err == nil {
			t.Error("a relative NOTIFY_SOCKET was accepted")
		}
		t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
		if sent, err := Notify(NotifyReady); sent || err == nil {
			t.Errorf("a socket nobody listens on: %v, %v; want an error", sent, err)
		}
	})
}
