package inmemory_test

import (
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/drivertest"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

func TestDriver(t *testing.T) {
	drivertest.Run(t, func(*testing.T) driver.Driver { return inmemory.New() }, drivertest.StoresInMemory())
}
