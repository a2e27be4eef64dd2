package tlsutil

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Reloader serves a certificate and key pair to a tls.Config through
// GetCertificate and replaces it, without restarting listeners, when the
// files change. It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[KeyPair]
	stamp             atomic.Pointer[fileStamp]
}

type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func (a *fileStamp) equal(b *fileStamp) bool {
	return a.certMod.Equal(b.certMod) && a.keyMod.Equal(b.keyMod) && a.certSize == b.certSize && a.keySize == b.keySize
}

// NewReloader loads the pair and returns a Reloader serving it. Warnings
// about the pair (e.g. expiry) go to log, which may be nil.
func NewReloader(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Current returns the pair being served.
func (r *Reloader) Current() *KeyPair { return r.cur.Load() }

// GetCertificate implements tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	kp := r.cur.Load()
	if kp == nil {
		return nil, errors.New("no certificate loaded")
	}
	return &kp.TLS, nil
}

// Reload reads the files again and, if they form a valid pair, serves the
// new pair. Otherwise it keeps the old pair and returns the error.
func (r *Reloader) Reload() error {
	st, _ := r.statFiles()
	kp, err := LoadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	for _, w := range kp.Warnings {
		r.log.Warn("TLS certificate", "file", r.certFile, "warning", w)
	}
	r.cur.Store(kp)
	if st != nil {
		r.stamp.Store(st)
	}
	return nil
}

func (r *Reloader) statFiles() (*fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return nil, err
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return nil, err
	}
	return &fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// Watch checks the files' modification times and sizes every interval and
// reloads when they change, until ctx is done. A failed reload is logged
// and the old pair kept; it is retried on the next change.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := r.statFiles()
		if err != nil {
			continue // a file being replaced; look again next time
		}
		if old := r.stamp.Load(); old != nil && old.equal(st) {
			continue
		}
		if err := r.Reload(); err != nil {
			r.log.Error("TLS certificate reload failed; still serving the previous certificate", "cert", r.certFile, "key", r.keyFile, "err", err)
			r.stamp.Store(st) // do not retry until the files change again
			continue
		}
		r.log.Info("TLS certificate reloaded", "cert", r.certFile, "subject", r.Current().Leaf.Subject.String(), "not_after", r.Current().Leaf.NotAfter)
	}
}
