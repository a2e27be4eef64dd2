package benchenv

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStatusBytes(t *testing.T) {
	status := "Name:\tgatehouse\nVmPeak:\t 1300000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
	for _, tc := range []struct {
		name, in, key string
		want          int64
		bad           bool
	}{
		{"VmHWM", status, "VmHWM:", 20480 << 10, false},
		{"VmRSS", status, "VmRSS:", 10240 << 10, false},
		{"missing", status, "VmSwap:", 0, true},
		{"no unit", "VmHWM:\t12\n", "VmHWM:", 0, true},
		{"not a number", "VmHWM:\tx kB\n", "VmHWM:", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusBytes([]byte(tc.in), tc.key)
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("got %d, %v; want %d (error %v)", got, err, tc.want, tc.bad)
			}
		})
	}
}

func FuzzParseStatusBytes(f *testing.F) {
	f.Add([]byte("VmHWM:\t 20480 kB\n"))
	f.Add([]byte("VmHWM: -1 kB"))
	f.Add([]byte("VmHWM:"))
	f.Fuzz(func(_ *testing.T, b []byte) { _, _ = parseStatusBytes(b, "VmHWM:") })
}

// TestProcess starts a real program, reads its peak RSS and stops it.
func TestProcess(t *testing.T) {
	p, err := Start("sleep", filepath.Join(t.TempDir(), "log"), nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if rss, err := p.PeakRSS(); err != nil || rss <= 0 {
		t.Fatalf("PeakRSS = %d, %v", rss, err)
	}
	start := time.Now()
	p.Stop()
	if !p.Exited() || time.Since(start) > 5*time.Second {
		t.Fatalf("Stop: exited %v after %v", p.Exited(), time.Since(start))
	}
	p.Stop() // a second Stop is harmless
}

func TestToolMissing(t *testing.T) {
	t.Setenv("GATEHOUSE_TOOLS", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	if _, err := Tool("no-such-program-gatehouse"); err == nil || !strings.Contains(err.Error(), "install-deps") {
		t.Fatalf("Tool of a missing program: %v", err)
	}
}

func TestLoadAvg(t *testing.T) {
	if f := strings.Fields(LoadAvg()); len(f) != 3 {
		t.Fatalf("LoadAvg() = %q", LoadAvg())
	}
}
