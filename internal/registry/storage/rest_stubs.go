package storage

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

var errTODO = errors.New("not implemented yet")

// GCOptions tune GC.
type GCOptions struct {
	DryRun         bool
	DeleteUntagged bool
	// Progress, when set, receives one line per step.
	Progress func(format string, args ...any)
}

// GCResult counts what GC did (or would do, in a dry run).
type GCResult struct {
	Repositories      int
	ManifestsMarked   int
	BlobsMarked       int
	ManifestsDeleted  int
	BlobsSwept        int
	BytesFreed        int64
	LayerLinksRemoved int
}

// GC marks every blob reachable from a manifest and deletes the rest. The
// registry must not accept writes while it runs.
func GC(ctx context.Context, d driver.Driver, opts GCOptions) (GCResult, error) {
	return GCResult{}, errTODO
}

// PurgeResult counts removed uploads.
type PurgeResult struct {
	Purged int
	Errors int
}

// PurgeUploads removes uploads started more than olderThan ago.
func PurgeUploads(ctx context.Context, d driver.Driver, olderThan time.Duration, dryRun bool) (PurgeResult, error) {
	return PurgeResult{}, errTODO
}
