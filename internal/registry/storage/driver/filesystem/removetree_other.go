//go:build !linux

package filesystem

import "os"

// removeTree removes fp and everything below it; an fp that does not
// exist gives an error matching fs.ErrNotExist.
func removeTree(fp string) error {
	if _, err := os.Lstat(fp); err != nil {
		return err
	}
	return os.RemoveAll(fp)
}
