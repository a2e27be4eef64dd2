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

func TestPromCounter(t *testing.T) {
	text := `# HELP minio_api_requests_traffic_received_bytes Total number of bytes received
# TYPE minio_api_requests_traffic_received_bytes counter
minio_api_requests_traffic_received_bytes{server="127.0.0.1:9000",type="s3"} 1.073741824e+09
minio_api_requests_traffic_received_bytes{server="127.0.0.1:9000",type="admin"} 100
minio_api_requests_traffic_received_bytes_total 5
minio_api_requests_traffic_sent_bytes{server="127.0.0.1:9000",type="s3"} 7
`
	for _, tc := range []struct {
		name, in, metric string
		want             int64
		found, bad       bool
	}{
		{"summed over labels", text, "minio_api_requests_traffic_received_bytes", 1<<30 + 100, true, false},
		{"other metric", text, "minio_api_requests_traffic_sent_bytes", 7, true, false},
		{"without labels", "up 1\n", "up", 1, true, false},
		{"absent", text, "minio_s3_traffic_received_bytes", 0, false, false},
		{"no value", "up{a=\"b\"}\n", "up", 0, false, true},
		{"not a number", "up x\n", "up", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := PromCounter(strings.NewReader(tc.in), tc.metric)
			if (err != nil) != tc.bad || got != tc.want || found != tc.found {
				t.Errorf("got %d, %v, %v; want %d, %v (error %v)", got, found, err, tc.want, tc.found, tc.bad)
			}
		})
	}
}

func TestProcIOField(t *testing.T) {
	io := "rchar: 150905907\nwchar: 25820\nread_bytes: 24576\nwrite_bytes: 143360\ncancelled_write_bytes: 0\n"
	if got, err := ProcIOField(io, "write_bytes"); err != nil || got != 143360 {
		t.Errorf("write_bytes: %d, %v", got, err)
	}
	if got, err := ProcIOField(io, "cancelled_write_bytes"); err != nil || got != 0 {
		t.Errorf("cancelled_write_bytes: %d, %v", got, err)
	}
	if _, err := ProcIOField(io, "bytes"); err == nil {
		t.Error("a missing field: want an error")
	}
}
