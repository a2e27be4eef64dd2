package storage

import (
	"context"
	"errors"
	"path"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// comparePaths orders repository names component by component, the order
// a sorted depth-first walk visits them in (registry:2's catalog order):
// "a" < "a/b" < "a-b".
func comparePaths(a, b string) int {
	return strings.Compare(strings.ReplaceAll(a, "/", "\x00"), strings.ReplaceAll(b, "/", "\x00"))
}

var errStopWalk = errors.New("stop walking")

// walkRepos calls fn with every repository name (a directory holding
// _manifests, as registry:2 decides), in comparePaths order. fn may
// return errStopWalk to end the walk early.
func walkRepos(ctx context.Context, d driver.Driver, fn func(name string) error) error {
	return walkReposAfter(ctx, d, "", fn)
}

// walkReposAfter is walkRepos from the first repository after last (""
// = from the start): it does not descend into a directory whose every
// repository sorts before last, so that a page of the catalog costs the
// directories on the way to last, not every repository before it.
func walkReposAfter(ctx context.Context, d driver.Driver, last string, fn func(name string) error) error {
	err := d.Walk(ctx, reposRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		if last != "" {
			// Every name below dir is dir/..., which compares like dir
			// itself against a last that dir is not an ancestor of.
			dir := strings.TrimPrefix(fi.Path(), reposRoot+"/")
			if !strings.HasPrefix(last, dir+"/") && comparePaths(dir, last) < 0 {
				return driver.ErrSkipDir
			}
		}
		base := path.Base(fi.Path())
		if base == "_manifests" {
			name := strings.TrimPrefix(path.Dir(fi.Path()), reposRoot+"/")
			if err := fn(name); err != nil {
				return err
			}
			return driver.ErrSkipDir
		}
		if strings.HasPrefix(base, "_") {
			return driver.ErrSkipDir
		}
		return nil
	})
	if driver.IsNotFound(err) || errors.Is(err, errStopWalk) {
		return nil
	}
	return err
}

// Catalog lists repository names after last (exclusive; "" = from the
// start), at most n of them (n <= 0 = all), in the order registry:2 uses
// (path components compared one by one). more reports whether names remain.
func (r *Registry) Catalog(ctx context.Context, last string, n int) (repos []string, more bool, err error) {
	repos = []string{}
	err = walkReposAfter(ctx, r.d, last, func(name string) error {
		if last != "" && comparePaths(name, last) <= 0 {
			return nil
		}
		if n > 0 && len(repos) == n {
			more = true
			return errStopWalk
		}
		repos = append(repos, name)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return repos, more, nil
}
