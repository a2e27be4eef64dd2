package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestRunServesAndDrains(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "ok")
	})
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			started = make(chan struct{})
			release = make(chan struct{})
			cfg := Config{Name: "test", Addr: "127.0.0.1:0", Handler: h, DrainTimeout: 5 * time.Second}
			client := &http.Client{Timeout: 10 * time.Second}
			if tc.tls {
				cert := selfSigned(t)
				cfg.TLS = TLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }, 0)
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
			}
			s, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.HasPrefix(s.URL(), "https://"); got != tc.tls {
				t.Fatalf("URL %s, tls %v", s.URL(), tc.tls)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()

			resp, err := client.Get(s.URL() + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tc.tls && (resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12) {
				t.Fatalf("TLS state %+v", resp.TLS)
			}

			// An in-flight request survives the shutdown.
			slow := make(chan string, 1)
			go func() {
				resp, err := client.Get(s.URL() + "/slow")
				if err != nil {
					slow <- "error: " + err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				slow <- string(b)
			}()
			<-started
			cancel()
			// Release the handler only once the shutdown is under way:
			// Shutdown closes the listener before it waits for requests.
			testenv.Eventually(t, 5*time.Second, "the listener to close", func() bool {
				c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			close(release)
			if got := <-slow; got != "ok" {
				t.Fatalf("in-flight request got %q", got)
			}
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if resp, err := client.Get(s.URL() + "/"); err == nil {
				resp.Body.Close()
				t.Fatal("server still answers after shutdown")
			}
		})
	}
}

func TestNewRefusesTLSWithoutCertificate(t *testing.T) {
	_, err := New(context.Background(), Config{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), TLS: &tls.Config{}})
	if err == nil {
		t.Fatal("want an error")
	}
}

func TestTimeoutDefaults(t *testing.T) {
	s, err := New(context.Background(), Config{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), ReadTimeout: -1, WriteTimeout: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := []time.Duration{s.hs.ReadHeaderTimeout, s.hs.ReadTimeout, s.hs.WriteTimeout, s.hs.IdleTimeout}
	want := []time.Duration{DefaultReadHeaderTimeout, 0, 7 * time.Second, DefaultIdleTimeout}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("timeout %d = %v, want %v", i, got[i], want[i])
		}
	}
	if s.hs.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Errorf("MaxHeaderBytes = %d", s.hs.MaxHeaderBytes)
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	t.Run("stale socket removed", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("socket file should remain: %v", err)
		}
		ln2, err := Listen(context.Background(), "unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ln2.Close()
	})
	t.Run("live socket refused", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		if _, err := Listen(context.Background(), "unix", path); err == nil || !strings.Contains(err.Error(), "another process") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("regular file refused", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(context.Background(), "unix", path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatal("regular file was removed")
		}
	})
	t.Run("unknown network", func(t *testing.T) {
		if _, err := Listen(context.Background(), "udp", "127.0.0.1:0"); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestWatchFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := WatchFiles(ctx, 10*time.Millisecond, path)
	select {
	case <-ch:
		t.Fatal("notified without a change")
	case <-time.After(100 * time.Millisecond):
	}
	// Same size, mtime forced back: only the hash differs.
	fi, _ := os.Stat(path)
	if err := os.WriteFile(path, []byte("a: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after a content change")
	}
	cancel()
	for range ch { // drains, then closed
	}
}

// TestGroupStopsTogether: a failing extra server stops the main one and
// the tasks; ending the context stops everything cleanly.
func TestGroupStopsTogether(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	newServer := func() *Server {
		s, err := New(context.Background(), Config{Addr: "127.0.0.1:0", Handler: h, DrainTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("context ends", func(t *testing.T) {
		main, extra := newServer(), newServer()
		taskDone := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Group{Main: main, Extra: []*Server{extra, nil}, Tasks: []func(context.Context){
				func(ctx context.Context) { <-ctx.Done(); close(taskDone) },
			}}.Run(ctx)
		}()
		resp, err := http.Get(extra.URL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		<-taskDone
	})
	t.Run("extra fails", func(t *testing.T) {
		main, extra := newServer(), newServer()
		done := make(chan error, 1)
		go func() { done <- Group{Main: main, Extra: []*Server{extra}}.Run(context.Background()) }()
		// Closing the extra listener under it makes its Serve fail.
		if err := extra.ln.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("want the extra server's error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the main server kept running after the extra one failed")
		}
		if err := (Group{Main: main, Extra: []*Server{extra}}).Close(); err != nil {
			t.Fatalf("Close after Run: %v", err)
		}
	})
}
