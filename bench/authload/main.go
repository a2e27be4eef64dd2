// Command authload measures a token server: it sends GET token requests
// from -c concurrent clients for -d (or until -n requests) and prints
// requests per second and latency percentiles.
//
//	go run ./bench/authload -url 'https://127.0.0.1:5001/auth?service=registry&scope=repository:a/b:pull' \
//	    -c 4 -d 10s -user alice -password secret -cacert certs/ca.crt
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "authload:", err)
		os.Exit(1)
	}
}

type result struct {
	latencies []time.Duration
	statuses  map[int]int
	errors    int
	elapsed   time.Duration
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("authload", flag.ContinueOnError)
	target := fs.String("url", "", "token URL, query included (required)")
	clients := fs.Int("c", 4, "concurrent clients")
	dur := fs.Duration("d", 10*time.Second, "duration (at most 10m)")
	maxReq := fs.Int("n", 1_000_000, "stop after this many requests")
	user := fs.String("user", "", "Basic auth user (none: anonymous)")
	pass := fs.String("password", "", "Basic auth password (or env AUTHLOAD_PASSWORD)")
	cacert := fs.String("cacert", "", "PEM CA bundle for https")
	insecure := fs.Bool("insecure", false, "skip TLS verification")
	asJSON := fs.Bool("json", false, "print one JSON object (ok, failed, seconds, rps, p50_ms, p99_ms, max_ms, statuses) instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		return errors.New("-url is required")
	}
	if *clients < 1 || *clients > 256 {
		return errors.New("-c must be 1..256")
	}
	if *dur <= 0 || *dur > 10*time.Minute {
		return errors.New("-d must be in (0, 10m]")
	}
	if *pass == "" {
		*pass = os.Getenv("AUTHLOAD_PASSWORD")
	}
	tlsConf := &tls.Config{InsecureSkipVerify: *insecure} //nolint:gosec // opt-in flag for test servers
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificates", *cacert)
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: *clients, ForceAttemptHTTP2: false}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	res := load(client, *target, *user, *pass, *clients, *dur, int64(*maxReq))
	if *asJSON {
		if err := reportJSON(out, res); err != nil {
			return err
		}
	} else {
		report(out, res)
	}
	if len(res.latencies) == 0 {
		return errors.New("no successful request")
	}
	return nil
}

func load(client *http.Client, target, user, pass string, clients int, d time.Duration, maxReq int64) result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu    sync.Mutex
		res   = result{statuses: map[int]int{}}
		count atomic.Int64
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			var lat []time.Duration
			statuses := map[int]int{}
			errs := 0
			for ctx.Err() == nil && count.Add(1) <= maxReq {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				if err != nil {
					errs++
					break
				}
				if user != "" {
					req.SetBasicAuth(user, pass)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK {
					lat = append(lat, time.Since(t0))
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			for k, v := range statuses {
				res.statuses[k] += v
			}
			res.errors += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func report(out io.Writer, r result) {
	slices.Sort(r.latencies)
	ok := len(r.latencies)
	_, _ = fmt.Fprintf(out, "requests ok: %d in %.2fs, %.0f req/s\n", ok, r.elapsed.Seconds(), float64(ok)/r.elapsed.Seconds())
	_, _ = fmt.Fprintf(out, "latency p50 %.2fms  p99 %.2fms  max %.2fms\n",
		ms(percentile(r.latencies, .50)), ms(percentile(r.latencies, .99)), ms(percentile(r.latencies, 1)))
	_, _ = fmt.Fprintf(out, "status codes: %v  transport errors: %d\n", r.statuses, r.errors)
}

// Summary is the -json output.
type Summary struct {
	OK       int            `json:"ok"`
	Errors   int            `json:"transport_errors"`
	Seconds  float64        `json:"seconds"`
	RPS      float64        `json:"rps"`
	P50      float64        `json:"p50_ms"`
	P99      float64        `json:"p99_ms"`
	Max      float64        `json:"max_ms"`
	Statuses map[string]int `json:"statuses"`
}

func reportJSON(out io.Writer, r result) error {
	slices.Sort(r.latencies)
	s := Summary{
		OK: len(r.latencies), Errors: r.errors, Seconds: r.elapsed.Seconds(),
		P50: ms(percentile(r.latencies, .50)), P99: ms(percentile(r.latencies, .99)), Max: ms(percentile(r.latencies, 1)),
		Statuses: map[string]int{},
	}
	if s.Seconds > 0 {
		s.RPS = float64(s.OK) / s.Seconds
	}
	for k, v := range r.statuses {
		s.Statuses[strconv.Itoa(k)] = v
	}
	return json.NewEncoder(out).Encode(s)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
