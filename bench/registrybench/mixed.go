package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mixedOp is one kind of request of the mixed load and its share.
type mixedOp struct {
	method, path string
	percent      int
}

// rawRequest formats an HTTP/1.1 request with no body.
func rawRequest(method, host, path string, hdr map[string]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: registrybench\r\n", method, path, host)
	for _, k := range slices.Sorted(maps.Keys(hdr)) {
		fmt.Fprintf(&b, "%s: %s\r\n", k, hdr[k])
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// mixedLoad runs clients concurrent clients for d, each on one kept-alive
// connection, each request drawn from ops by their shares (seeded per
// client), and returns the successful requests and their latencies.
func (t *target) mixedLoad(ctx context.Context, ops []mixedOp, clients int, d time.Duration) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	u, err := url.Parse(t.base)
	if err != nil {
		return loadResult{failed: 1}
	}
	hdr := map[string]string{"Accept": ociManifest}
	if t.token != "" {
		hdr["Authorization"] = "Bearer " + t.token
	}
	reqs := make([][]byte, len(ops))
	var pick []int // index into ops, one entry per percent
	for i, op := range ops {
		reqs[i] = rawRequest(op.method, u.Host, op.path, hdr)
		for range op.percent {
			pick = append(pick, i)
		}
	}
	var (
		mu     sync.Mutex
		res    loadResult
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	deadline, _ := ctx.Deadline()
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 70)) //nolint:gosec // seeded on purpose: the same mix every run
			var (
				conn net.Conn
				br   *bufio.Reader
				lat  []time.Duration
				buf  = make([]byte, 64<<10)
			)
			defer func() {
				if conn != nil {
					_ = conn.Close()
				}
			}()
			for ctx.Err() == nil {
				i := pick[rng.IntN(len(pick))]
				t0 := time.Now()
				err := func() error {
					if conn == nil {
						var dl net.Dialer
						c, err := dl.DialContext(ctx, "tcp", u.Host)
						if err != nil {
							return err
						}
						conn, br = c, bufio.NewReaderSize(c, 16<<10)
						_ = conn.SetDeadline(deadline)
					}
					if _, err := conn.Write(reqs[i]); err != nil {
						return err
					}
					keep, err := readResponse(br, buf, ops[i].method == "HEAD")
					if err != nil || !keep {
						_ = conn.Close()
						conn = nil
					}
					return err
				}()
				if err != nil {
					if ctx.Err() == nil && time.Now().Before(deadline) {
						failed.Add(1)
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ok = len(res.latencies)
	res.failed = int(failed.Load())
	slices.Sort(res.latencies)
	return res
}
