//go:build integration

package doctor_test

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// docs/doctor.md shows the first FAIL line of each broken setup these tests
// build. Every FAIL line a test meets must be on the page, and (when the
// whole package runs) every line on the page must have been met, so the
// page and doctor's words cannot drift apart. Ports, dates, durations,
// fingerprints and file locations differ from run to run and are masked.

const page = "../../docs/doctor.md"

var (
	samplesOnce sync.Once
	samples     map[string]string // masked line -> line on the page
	samplesErr  error
	metMu       sync.Mutex
	met         = map[string]bool{}
)

var (
	maskHex    = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	maskPath   = regexp.MustCompile(`(?:\S*/)?([A-Za-z0-9_.-]+\.crt)\b`)
	maskNumber = regexp.MustCompile(`[0-9]+`)
)

func mask(line string) string {
	line = maskHex.ReplaceAllString(line, "<fingerprint>")
	line = maskPath.ReplaceAllString(line, "<file>")
	return maskNumber.ReplaceAllString(line, "<n>")
}

// pageSamples reads the FAIL lines of the page's text blocks.
func pageSamples() (map[string]string, error) {
	samplesOnce.Do(func() {
		b, err := os.ReadFile(page)
		if err != nil {
			samplesErr = err
			return
		}
		samples = map[string]string{}
		in := false
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case strings.HasPrefix(l, "```"):
				in = !in && l == "```text"
			case in && strings.HasPrefix(l, "FAIL"):
				samples[mask(l)] = l
			}
		}
		if len(samples) == 0 {
			samplesErr = fmt.Errorf("%s shows no FAIL line", page)
		}
	})
	return samples, samplesErr
}

// expectOnPage fails t unless doctor's FAIL line is one the page shows.
func expectOnPage(t *testing.T, first string) {
	t.Helper()
	s, err := pageSamples()
	if err != nil {
		t.Fatal(err)
	}
	m := mask(first)
	if _, ok := s[m]; !ok {
		t.Errorf("%s does not show this FAIL line (numbers, paths and fingerprints aside); update the page:\n%s", page, first)
		return
	}
	metMu.Lock()
	met[m] = true
	metMu.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if f := flag.Lookup("test.run"); code == 0 && f != nil && f.Value.String() == "" {
		s, err := pageSamples()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for k, l := range s {
			if !met[k] {
				fmt.Fprintf(os.Stderr, "%s shows a FAIL line no test produced (stale sample?):\n%s\n", page, l)
				code = 1
			}
		}
	}
	os.Exit(code)
}
