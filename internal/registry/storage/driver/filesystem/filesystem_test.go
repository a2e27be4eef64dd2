package filesystem_test

import (
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/drivertest"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
)

func TestDriver(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run(map[bool]string{true: "durable", false: "nondurable"}[durable], func(t *testing.T) {
			drivertest.Run(t, func(t *testing.T) driver.Driver {
				d, err := filesystem.New(filesystem.Options{RootDirectory: t.TempDir(), Durable: durable})
				if err != nil {
					t.Fatal(err)
				}
				return d
			})
		})
	}
}
