package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// target is one registry under test, as the workload sees it.
type target struct {
	base  string // http://127.0.0.1:port
	repo  string
	token string // bearer token; empty for no auth
	hc    *http.Client
}

// newClient returns the workload's HTTP client. It never follows a
// redirect: a redirect comes back as the response, and a step that did not
// expect one fails on its status (the s3 suite follows redirects itself,
// where it asks for them).
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (t *target) do(ctx context.Context, method, rawURL string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.hc.Do(req)
}

// expect drains and closes resp and fails unless its status is want.
func expect(resp *http.Response, want int, what string) error {
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s (want %d): %s", what, resp.Status, want, bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// location resolves a response's Location against the registry.
func (t *target) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("no Location header")
	}
	base, err := url.Parse(t.base)
	if err != nil {
		return "", err
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func withDigest(loc, digest string) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(digest)
}

func (t *target) startUpload(ctx context.Context) (string, error) {
	resp, err := t.do(ctx, http.MethodPost, t.base+"/v2/"+t.repo+"/blobs/uploads/", bytes.NewReader(nil), 0, nil) //nolint:bodyclose // expect closes it
	if err != nil {
		return "", err
	}
	loc, lerr := t.location(resp)
	if err := expect(resp, http.StatusAccepted, "POST upload"); err != nil {
		return "", err
	}
	return loc, lerr
}

// pushMonolithic pushes the stream of seed with POST, then one PUT
// carrying the whole body, and returns the time taken.
func (t *target) pushMonolithic(ctx context.Context, seed uint64, size int64, digest string) (time.Duration, error) {
	start := time.Now()
	loc, err := t.startUpload(ctx)
	if err != nil {
		return 0, err
	}
	resp, err := t.do(ctx, http.MethodPut, withDigest(loc, digest), newGen(seed, size), size, //nolint:bodyclose // expect closes it
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return 0, err
	}
	if err := expect(resp, http.StatusCreated, "PUT blob"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// pushChunked pushes the stream of seed with POST, PATCHes of chunk bytes
// with Content-Range, and a closing PUT.
func (t *target) pushChunked(ctx context.Context, seed uint64, size, chunk int64, digest string) (time.Duration, error) {
	start := time.Now()
	loc, err := t.startUpload(ctx)
	if err != nil {
		return 0, err
	}
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		resp, err := t.do(ctx, http.MethodPatch, loc, section(seed, size, off, n), n, map[string]string{ //nolint:bodyclose // expect closes it
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, off+n-1),
		})
		if err != nil {
			return 0, err
		}
		next, lerr := t.location(resp)
		if err := expect(resp, http.StatusAccepted, "PATCH chunk"); err != nil {
			return 0, err
		}
		if lerr != nil {
			return 0, fmt.Errorf("PATCH chunk: %w", lerr)
		}
		loc = next
	}
	resp, err := t.do(ctx, http.MethodPut, withDigest(loc, digest), bytes.NewReader(nil), 0, nil) //nolint:bodyclose // closed by expect or below
	if err != nil {
		return 0, err
	}
	if err := expect(resp, http.StatusCreated, "PUT closing chunked upload"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// pull GETs a blob, discarding it, and checks its length.
func (t *target) pull(ctx context.Context, digest string, size int64) (time.Duration, error) {
	start := time.Now()
	resp, err := t.do(ctx, http.MethodGet, t.base+"/v2/"+t.repo+"/blobs/"+digest, nil, 0, nil) //nolint:bodyclose // closed by expect or below
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET blob: %s%s", resp.Status, redirectNote(resp))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, fmt.Errorf("GET blob: %d bytes, want %d", n, size)
	}
	return time.Since(start), nil
}

// pushSmallBlob pushes b in one POST with ?digest=, falling back to POST
// then PUT when the registry answers 202.
func (t *target) pushSmallBlob(ctx context.Context, b []byte) (string, error) {
	sum := sha256.Sum256(b)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	loc, err := t.startUpload(ctx)
	if err != nil {
		return "", err
	}
	resp, err := t.do(ctx, http.MethodPut, withDigest(loc, digest), bytes.NewReader(b), int64(len(b)), //nolint:bodyclose // closed by expect or below
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return "", err
	}
	return digest, expect(resp, http.StatusCreated, "PUT config blob")
}

// manifest returns an OCI image manifest of the config and one layer.
func manifest(configDigest string, configSize int, layerDigest string, layerSize int64) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ociManifest, ociConfig, configDigest, configSize, ociLayer, layerDigest, layerSize)
}

func (t *target) putManifest(ctx context.Context, tag string, m []byte) error {
	resp, err := t.do(ctx, http.MethodPut, t.base+"/v2/"+t.repo+"/manifests/"+tag, bytes.NewReader(m), int64(len(m)), //nolint:bodyclose // closed by expect or below
		map[string]string{"Content-Type": ociManifest})
	if err != nil {
		return err
	}
	return expect(resp, http.StatusCreated, "PUT manifest "+tag)
}

// loadResult is what a fixed-duration load measured.
type loadResult struct {
	ok        int
	failed    int
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

func (r loadResult) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

func (r loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p*float64(len(r.latencies))+0.5) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

// manifestLoad GETs the manifest under tag from clients concurrent clients
// for d, and returns the successful requests and their latencies. Each
// client keeps one HTTP/1.1 connection and speaks the protocol itself
// (see rawClient): net/http's client costs about as much CPU per request as
// a registry does, and on a small machine the load generator shares the
// cores with the server it measures.
func (t *target) manifestLoad(ctx context.Context, tag string, clients int, d time.Duration) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu     sync.Mutex
		res    loadResult
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	hdr := map[string]string{"Accept": ociManifest}
	if t.token != "" {
		hdr["Authorization"] = "Bearer " + t.token
	}
	start := time.Now()
	deadline, _ := ctx.Deadline()
	for range clients {
		wg.Go(func() {
			c, err := newRawClient(t.base, "/v2/"+t.repo+"/manifests/"+tag, hdr)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.close()
			var lat []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := c.get(ctx); err != nil {
					// Errors at the deadline are the load ending, not failures.
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

// rawClient sends one prepared GET over a kept-alive HTTP/1.1 connection
// and reads the answer's status line, headers and Content-Length body.
type rawClient struct {
	addr string
	req  []byte
	conn net.Conn
	br   *bufio.Reader
	body []byte
}

func newRawClient(base, path string, hdr map[string]string) (*rawClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("raw client: %s: only http", base)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: registrybench\r\n", path, u.Host)
	keys := slices.Sorted(maps.Keys(hdr))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, hdr[k])
	}
	b.WriteString("\r\n")
	return &rawClient{addr: u.Host, req: []byte(b.String()), body: make([]byte, 64<<10)}, nil
}

func (c *rawClient) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// get sends the request and reads a 200 answer; any other answer or a
// broken connection is an error (and the connection is dropped).
func (c *rawClient) get(ctx context.Context) error {
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(deadline)
	}
	keep, err := c.roundTrip()
	if err != nil || !keep {
		c.close()
	}
	return err
}

func (c *rawClient) roundTrip() (keepAlive bool, err error) {
	if _, err := c.conn.Write(c.req); err != nil {
		return false, err
	}
	return readResponse(c.br, c.body, false)
}

// readResponse reads an HTTP/1.1 answer from br, discarding its body
// through buf (none for the answer to a HEAD), and tells whether the
// connection may be used again. An answer other than 200 is an error.
func readResponse(br *bufio.Reader, buf []byte, head bool) (keepAlive bool, err error) {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	code, ok := statusCode(status)
	if !ok {
		return false, fmt.Errorf("malformed status line %q", bytes.TrimSpace(status))
	}
	length := int64(-1)
	keepAlive = true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return false, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keepAlive = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return false, fmt.Errorf("unexpected Transfer-Encoding %q", value)
		}
	}
	if length < 0 {
		return false, errors.New("answer without Content-Length")
	}
	if head {
		length = 0
	}
	if n, err := io.CopyBuffer(io.Discard, io.LimitReader(br, length), buf); err != nil || n != length {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return false, err
	}
	if code != http.StatusOK {
		return keepAlive, fmt.Errorf("status %d", code)
	}
	return keepAlive, nil
}

// statusCode reads the code of an "HTTP/1.1 200 OK" status line.
func statusCode(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1."))
	if !ok || len(rest) < 5 || rest[1] != ' ' {
		return 0, false
	}
	code, err := strconv.Atoi(string(rest[2:5]))
	if err != nil || code < 100 || code > 999 {
		return 0, false
	}
	return code, true
}

// tagMany PUTs m under n tags with a few concurrent clients.
func (t *target) tagMany(ctx context.Context, m []byte, n int) error {
	const workers = 8
	next := atomic.Int64{}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				if err := t.putManifest(ctx, tagName(int(i)), m); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

func tagName(i int) string { return fmt.Sprintf("t%05d", i) }

// listTags GETs the repository's tags list, following Link pagination, and
// returns how many tags came back and the time the requests took (the
// count is taken afterwards).
func (t *target) listTags(ctx context.Context) (int, time.Duration, error) {
	u := t.base + "/v2/" + t.repo + "/tags/list"
	var bodies [][]byte
	start := time.Now()
	for u != "" {
		resp, err := t.do(ctx, http.MethodGet, u, nil, 0, nil) //nolint:bodyclose // closed by expect or below
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("tags list: %s", resp.Status)
		}
		bodies = append(bodies, body)
		u = ""
		if link := resp.Header.Get("Link"); link != "" {
			next, err := nextLink(t.base, link)
			if err != nil {
				return 0, 0, err
			}
			u = next
		}
	}
	elapsed := time.Since(start)
	total := 0
	for _, b := range bodies {
		var list struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return 0, 0, fmt.Errorf("tags list: %w", err)
		}
		total += len(list.Tags)
	}
	return total, elapsed, nil
}

// nextLink parses `<url>; rel="next"` against base.
func nextLink(base, link string) (string, error) {
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start || !strings.Contains(link[end:], `rel="next"`) {
		return "", fmt.Errorf("unexpected Link header %q", link)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u, err := b.Parse(link[start+1 : end])
	if err != nil {
		return "", err
	}
	return u.String(), nil
}
