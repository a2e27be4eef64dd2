package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// PurgeResult counts the uploads PurgeUploads removed (or would remove).
type PurgeResult struct {
	Purged int // removed (or, in a dry run, to remove)
	Kept   int // younger than the cutoff
	Errors int // could not be read or removed; the first error is returned
	// Staged counts the unfinished staged writes removed (S3: multipart
	// uploads a crash left, driver.Stager).
	Staged int
}

// PurgeUploads removes uploads started more than olderThan ago, in every
// repository (registry:2's upload purging). An upload whose startedat
// cannot be read is judged by its directory's modification time. Staged
// writes (S3 multipart uploads) older than that are aborted too. With
// dryRun nothing is deleted.
func PurgeUploads(ctx context.Context, d driver.Driver, olderThan time.Duration, dryRun bool) (PurgeResult, error) {
	var res PurgeResult
	cutoff := time.Now().Add(-olderThan)
	var repos []string
	if err := walkRepoDirs(ctx, d, "_uploads", func(name string) { repos = append(repos, name) }); err != nil {
		return res, fmt.Errorf("purge uploads: %w", err)
	}
	var first error
	fail := func(name string, err error) {
		res.Errors++
		if first == nil {
			first = fmt.Errorf("purge uploads: %s: %w", name, err)
		}
	}
	for _, name := range repos {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ids, err := d.List(ctx, uploadsDir(name))
		if err != nil {
			if !driver.IsNotFound(err) {
				fail(name, err)
			}
			continue
		}
		for _, dir := range ids {
			started, err := uploadStarted(ctx, d, dir)
			if err != nil {
				fail(name, err)
				continue
			}
			if !started.Before(cutoff) {
				res.Kept++
				continue
			}
			res.Purged++
			if dryRun {
				continue
			}
			if err := d.Delete(ctx, dir); err != nil && !driver.IsNotFound(err) {
				res.Purged--
				fail(name, err)
			}
		}
	}
	if s, ok := d.(driver.Stager); ok {
		n, err := s.PurgeStaged(ctx, rootPath, cutoff, dryRun)
		res.Staged = n
		if err != nil && !errors.Is(err, driver.ErrUnsupported) {
			fail("staged writes", err)
		}
	}
	return res, first
}

func uploadStarted(ctx context.Context, d driver.Driver, dir string) (time.Time, error) {
	if b, err := d.GetContent(ctx, dir+"/startedat"); err == nil {
		if t, err := time.Parse(time.RFC3339, string(b)); err == nil {
			return t, nil
		}
	}
	fi, err := d.Stat(ctx, dir)
	if err != nil {
		if driver.IsNotFound(err) {
			return time.Now(), nil // gone meanwhile
		}
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// walkRepoDirs calls fn with every repository that has a directory called
// marker (_uploads, _layers), including repositories without manifests.
func walkRepoDirs(ctx context.Context, d driver.Driver, marker string, fn func(name string)) error {
	err := d.Walk(ctx, reposRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		base := path.Base(fi.Path())
		if base == marker {
			fn(path.Dir(fi.Path())[len(reposRoot)+1:])
			return driver.ErrSkipDir
		}
		if base[0] == '_' {
			return driver.ErrSkipDir
		}
		return nil
	})
	if driver.IsNotFound(err) {
		return nil
	}
	return err
}
