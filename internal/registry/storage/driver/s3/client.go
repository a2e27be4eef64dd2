package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// newTransport returns the HTTP transport of every S3 call: bounded dial,
// TLS handshake and response header times, and connections that give up
// when no byte moves for Timeouts.IO. The roots are the system's (Go
// honours SSL_CERT_FILE and SSL_CERT_DIR) plus, when AWS_CA_BUNDLE is set,
// the certificates of that file, as the AWS SDKs read it.
func newTransport(cfg Config) (*http.Transport, error) {
	to := cfg.Timeouts
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.SkipVerify {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // storage.s3.skipverify asks for it
	}
	if bundle := os.Getenv("AWS_CA_BUNDLE"); bundle != "" && !cfg.SkipVerify {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(bundle) //nolint:gosec // the operator names this file in AWS_CA_BUNDLE
		if err != nil {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE %q holds no PEM certificate", bundle)
		}
		tlsCfg.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: to.Dial, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &ioTimeoutConn{Conn: c, timeout: to.IO}, nil
		},
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   to.TLSHandshake,
		ResponseHeaderTimeout: to.ResponseHeader,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
	}, nil
}

// ioTimeoutConn fails a read or write that makes no progress for timeout.
// A write also pushes the read deadline out, so a connection that sat idle
// in the pool gets the full timeout for the response to its next request.
type ioTimeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *ioTimeoutConn) Read(b []byte) (int, error) {
	if err := c.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *ioTimeoutConn) Write(b []byte) (int, error) {
	if err := c.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// roundTripper sets the configured User-Agent and logs requests.
type roundTripper struct {
	next      http.RoundTripper
	userAgent string
	log       *slog.Logger // nil: no request log
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt.userAgent != "" {
		// User-Agent is not part of the V4 (or V2) signature.
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", rt.userAgent)
	}
	if rt.log == nil {
		return rt.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := rt.next.RoundTrip(req)
	// The path only: a presigned or signed query carries signatures.
	attrs := []any{"method", req.Method, "host", req.URL.Host, "path", req.URL.Path, "duration", time.Since(start)}
	if err != nil {
		rt.log.DebugContext(req.Context(), "s3 request failed", append(attrs, "err", err)...)
		return resp, err
	}
	rt.log.DebugContext(req.Context(), "s3 request", append(attrs, "status", resp.StatusCode)...)
	return resp, nil
}

// awsEndpoint is the AWS S3 endpoint for the config's flags; minio-go
// picks the regional host from Region.
func awsEndpoint(cfg Config) string {
	if cfg.FIPS {
		return "s3-fips." + cfg.Region + ".amazonaws.com"
	}
	return "s3.amazonaws.com"
}

// newClient builds a minio-go client for endpoint (host[:port]).
func newClient(cfg Config, endpoint string, secure bool, rt http.RoundTripper) (*minio.Client, error) {
	var creds *credentials.Credentials
	switch {
	case cfg.AccessKey != "" && !cfg.V4Auth:
		creds = credentials.NewStaticV2(cfg.AccessKey, cfg.SecretKey.Reveal(), "")
	case cfg.AccessKey != "":
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey.Reveal(), "")
	default:
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{Client: &http.Client{Transport: rt, Timeout: time.Minute}},
		})
	}
	lookup := minio.BucketLookupAuto
	if cfg.ForcePathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    rt,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   3,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Accelerate {
		c.SetS3TransferAccelerate("s3-accelerate.amazonaws.com")
	}
	if cfg.DualStack {
		c.SetS3EnableDualstack(true)
	}
	return c, nil
}
