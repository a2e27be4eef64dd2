package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/doctor"
)

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestDoctorUsage(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"doctor"}, "", "accepts 1 arg"},
		{[]string{"doctor", "localhost:5000", "--password-stdin"}, "pw\n", "--password-stdin needs -u USER"},
		{[]string{"doctor", "localhost:5000", "-u", "alice", "--password-stdin"}, "", "no password on standard input"},
		{[]string{"doctor", "localhost:5000", "-u", "alice"}, "", "not a terminal"},
		{[]string{"doctor", "localhost:5000", "--timeout", "0s"}, "", "--timeout must be positive"},
		{[]string{"doctor", "ftp://localhost:5000"}, "", "https or http"},
	} {
		var out, errOut bytes.Buffer
		code := Main(tc.args, strings.NewReader(tc.stdin), &out, &errOut)
		if code != exitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut.String(), exitUsage, tc.want)
		}
	}
}

func TestDoctorFailsAtFirstBrokenLink(t *testing.T) {
	addr := closedAddr(t)
	var out, errOut bytes.Buffer
	code := Main([]string{"doctor", "https://" + addr, "-u", "alice", "--password-stdin", "--timeout", "3s"},
		strings.NewReader("sekrit-pw\n"), &out, &errOut)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, exitFailure, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(doctor.Checks)+1 {
		t.Fatalf("%d lines, want one per check and a summary:\n%s", len(lines), out.String())
	}
	if !strings.HasPrefix(lines[0], "ok    dns") || !strings.HasPrefix(lines[1], "FAIL  tls") || !strings.Contains(lines[1], "connection refused") {
		t.Errorf("unexpected lines:\n%s", out.String())
	}
	if !strings.HasPrefix(lines[2], "skip  challenge") {
		t.Errorf("check after the failure not skipped: %s", lines[2])
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "the tls check failed") {
		t.Errorf("summary = %q", last)
	}
	if strings.Contains(out.String()+errOut.String(), "sekrit-pw") {
		t.Error("the password was printed")
	}
}

func TestDoctorJSON(t *testing.T) {
	addr := closedAddr(t)
	var out, errOut bytes.Buffer
	code := Main([]string{"doctor", "http://" + addr, "--json", "--timeout", "3s"}, strings.NewReader(""), &out, &errOut)
	if code != exitFailure {
		t.Fatalf("exit %d; stderr %s", code, errOut.String())
	}
	var rep doctor.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.OK || len(rep.Checks) != len(doctor.Checks) || rep.Checks[1].Status != doctor.Fail || rep.Checks[1].Fix == "" {
		t.Errorf("report = %+v", rep)
	}
}
