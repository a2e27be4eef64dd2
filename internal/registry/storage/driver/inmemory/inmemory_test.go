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

// TestCheckedDriver runs the suite through driver.Checked, the wrapper
// every opened driver gets, so the wrapper changes no behaviour.
func TestCheckedDriver(t *testing.T) {
	drivertest.Run(t, func(*testing.T) driver.Driver { return driver.Checked(inmemory.New()) }, drivertest.StoresInMemory())
}
