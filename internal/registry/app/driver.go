package app

import (
	"errors"
	"log/slog"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

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
		return nil, errors.New("storage.s3 is not supported yet (config check accepts it); use storage.filesystem for now")
	default:
		return nil, errors.New("no storage driver configured")
	}
	return driver.Checked(d), nil
}
