package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The service manager's notification protocol (systemd's sd_notify): when
// the process runs under a unit with Type=notify, $NOTIFY_SOCKET names a
// unix datagram socket, and each datagram is newline-separated VAR=value
// assignments. Gatehouse sends READY=1 once every listener is bound,
// RELOADING=1 and READY=1 around a reload asked for by SIGHUP, and
// STOPPING=1 when it starts shutting down. Without $NOTIFY_SOCKET nothing
// is sent.
const (
	NotifyReady    = "READY=1"
	NotifyStopping = "STOPPING=1"
)

// NotifyReloading is the message that opens a reload: RELOADING=1 with the
// monotonic clock, which Type=notify-reload needs (systemd 253 and later).
func NotifyReloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}

// Notify sends state to the service manager named by $NOTIFY_SOCKET and
// reports whether it was sent; without the variable it does nothing.
// An address starting with @ is a socket in the abstract namespace.
func Notify(state string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return false, fmt.Errorf("NOTIFY_SOCKET %q is neither a path nor an abstract socket name", addr)
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify the service manager: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return false, err
	}
	n, err := conn.Write([]byte(state))
	if err == nil && n != len(state) {
		err = errors.New("short write")
	}
	if err != nil {
		return false, fmt.Errorf("notify the service manager: %w", err)
	}
	return true, nil
}

// NotifyLogged is Notify with its outcome logged: a failure as a warning
// (the service manager then times the start out or shows the wrong state,
// so the operator should know), a message sent at debug level.
func NotifyLogged(log *slog.Logger, state string) {
	sent, err := Notify(state)
	switch {
	case err != nil:
		log.Warn("could not notify the service manager", "state", strings.ReplaceAll(state, "\n", " "), "err", err)
	case sent:
		log.Debug("notified the service manager", "state", strings.ReplaceAll(state, "\n", " "))
	}
}

// ServiceReady returns the function each of n servers calls once all its
// listeners are bound, with the context that ends when it shuts down. The
// last call sends READY=1, and STOPPING=1 once its ctx ends.
func ServiceReady(n int) func(ctx context.Context, log *slog.Logger) {
	var left atomic.Int32
	left.Store(int32(n)) //nolint:gosec // n is the number of servers in one process
	return func(ctx context.Context, log *slog.Logger) {
		if left.Add(-1) != 0 {
			return
		}
		NotifyLogged(log, NotifyReady)
		go func() {
			<-ctx.Done()
			NotifyLogged(log, NotifyStopping)
		}()
	}
}
