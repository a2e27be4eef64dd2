package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// maxWatchedFile bounds how much of a watched file is hashed.
const maxWatchedFile = 16 << 20

// fileState is what the poller compares between ticks.
type fileState struct {
	exists bool
	size   int64
	mtime  time.Time
	sum    [sha256.Size]byte
}

func statFile(path string) fileState {
	f, err := os.Open(path)
	if err != nil {
		return fileState{}
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fileState{}
	}
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(f, maxWatchedFile))
	st := fileState{exists: true, size: fi.Size(), mtime: fi.ModTime()}
	copy(st.sum[:], h.Sum(nil))
	return st
}

func (a fileState) equal(b fileState) bool {
	return a.exists == b.exists && a.size == b.size && a.mtime.Equal(b.mtime) && bytes.Equal(a.sum[:], b.sum[:])
}

// WatchFiles polls paths every interval (one second when zero) and sends on
// the returned channel when any of them changed: its modification time, size
// or content hash differ from the previous poll. A burst of changes yields
// one notification; the channel is closed when ctx ends. It needs no
// inotify, so it works on network file systems and with ConfigMap symlink
// swaps.
func WatchFiles(ctx context.Context, interval time.Duration, paths ...string) <-chan struct{} {
	if interval <= 0 {
		interval = time.Second
	}
	out := make(chan struct{}, 1)
	prev := make([]fileState, len(paths))
	for i, p := range paths {
		prev[i] = statFile(p)
	}
	go func() {
		defer close(out)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			changed := false
			for i, p := range paths {
				st := statFile(p)
				if !st.equal(prev[i]) {
					changed = true
					prev[i] = st
				}
			}
			if changed {
				select {
				case out <- struct{}{}:
				default: // one is pending already
				}
			}
		}
	}()
	return out
}

// Signals returns a channel that receives one value per SIGHUP until ctx
// ends. While it is active, SIGHUP no longer kills the process.
func Signals(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(sig)
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// ShutdownContext returns a context cancelled by SIGTERM or SIGINT (and
// by stop). Pass it to Run for a graceful shutdown on those signals.
func ShutdownContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(parent, syscall.SIGTERM, os.Interrupt)
}

// ReloadLoop calls reload whenever SIGHUP arrives or one of paths changes
// (polled every interval), one reload at a time, until ctx ends. A reload
// for SIGHUP is announced to the service manager (RELOADING=1, then
// READY=1; see Notify). The
// result of each attempt is logged; a failed reload is expected to keep the
// running configuration (reload's job). observe, when not nil, is told the
// outcome (for metrics).
func ReloadLoop(ctx context.Context, log *slog.Logger, interval time.Duration, paths []string, reload func(ctx context.Context, reason string) error, observe func(err error)) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hup := Signals(ctx)
	changed := WatchFiles(ctx, interval, paths...)
	for {
		var reason string
		select {
		case <-ctx.Done():
			return
		case _, ok := <-hup:
			if !ok {
				return
			}
			reason = "SIGHUP"
		case _, ok := <-changed:
			if !ok {
				return
			}
			reason = "file changed"
		}
		log.Info("reloading", "reason", reason)
		if reason == "SIGHUP" {
			// ExecReload= sends SIGHUP: the service manager shows the
			// reload until READY=1.
			NotifyLogged(log, NotifyReloading())
		}
		err := reload(ctx, reason)
		if reason == "SIGHUP" {
			// A failed reload keeps serving the previous configuration:
			// ready either way.
			NotifyLogged(log, NotifyReady)
		}
		if observe != nil {
			observe(err)
		}
		if err != nil {
			// Log every problem on a line of its own so none hides in a
			// long message.
			for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
				log.Error("reload failed; still serving the previous configuration", "reason", reason, "problem", line)
			}
			continue
		}
		log.Info("reloaded", "reason", reason)
	}
}
