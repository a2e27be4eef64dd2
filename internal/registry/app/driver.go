package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/s3"
)

// s3StartTimeout bounds the bucket check when the S3 driver opens.
const s3StartTimeout = 30 * time.Second

// OpenDriver opens the storage driver cfg.storage names, wrapped so every
// driver gets the same path and context checks (driver.Checked). It is the
// one place a driver is chosen: `registry serve`, `serve` and `gc` all open
// storage here, and a new driver is one package plus one case below.
// log, when not nil, receives warnings about settings that risk data.
func OpenDriver(cfg *regconfig.Config, log *slog.Logger) (driver.Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var d driver.Driver
	switch cfg.Driver() {
	case "filesystem":
		fs := cfg.Storage.Filesystem
		fd, err := filesystem.New(filesystem.Options{RootDirectory: fs.RootDirectory, Durable: fs.IsDurable()})
		if err != nil {
			return nil, err
		}
		if !fs.IsDurable() {
			log.Warn("storage.filesystem.durable is false: writes are not fsynced and a crash can lose pushed content")
		}
		d = fd
	case "inmemory":
		log.Warn("storage.inmemory keeps content in memory only: it is lost when the registry stops")
		d = inmemory.New()
	case "s3":
		ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
		defer cancel()
		sd, err := s3.New(ctx, S3Config(cfg.Storage.S3, log))
		if err != nil {
			return nil, err
		}
		d = sd
	default:
		return nil, errors.New("no storage driver configured")
	}
	return driver.Checked(d), nil
}

// S3Config maps storage.s3 to the driver's config: distribution's
// defaults for secure and v4auth (true) are applied here.
func S3Config(c *regconfig.S3, log *slog.Logger) s3.Config {
	orTrue := func(b *bool) bool { return b == nil || *b }
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return s3.Config{
		AccessKey:                   c.AccessKey,
		SecretKey:                   c.SecretKey,
		Region:                      c.Region,
		RegionEndpoint:              c.RegionEndpoint,
		RedirectEndpoint:            c.RedirectEndpoint,
		ForcePathStyle:              c.ForcePathStyle,
		Bucket:                      c.Bucket,
		Encrypt:                     c.Encrypt,
		KeyID:                       c.KeyID,
		Secure:                      orTrue(c.Secure),
		SkipVerify:                  c.SkipVerify,
		V4Auth:                      orTrue(c.V4Auth),
		ChunkSize:                   c.ChunkSize,
		MultipartCopyChunkSize:      c.MultipartCopyChunkSize,
		MultipartCopyMaxConcurrency: c.MultipartCopyMaxConcurrency,
		MultipartCopyThresholdSize:  c.MultipartCopyThresholdSize,
		RootDirectory:               c.RootDirectory,
		StorageClass:                c.StorageClass,
		ObjectACL:                   c.ObjectACL,
		UserAgent:                   c.UserAgent,
		DualStack:                   c.UseDualStack,
		Accelerate:                  c.Accelerate,
		FIPS:                        c.UseFIPSEndpoint,
		LogLevel:                    c.LogLevel,
		Logger:                      log.With("component", "s3"),
		Timeouts: s3.Timeouts{
			Dial:           c.Timeouts.Dial,
			TLSHandshake:   c.Timeouts.TLSHandshake,
			ResponseHeader: c.Timeouts.ResponseHeader,
			IO:             c.Timeouts.IO,
		},
	}
}
