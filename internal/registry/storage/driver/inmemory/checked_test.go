package inmemory_test

import (
	"context"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

// counting records whether the wrapped driver was reached.
type counting struct {
	driver.Driver
	calls int
}

func (c *counting) GetContent(ctx context.Context, p string) ([]byte, error) {
	c.calls++
	return c.Driver.GetContent(ctx, p)
}

func (c *counting) Move(ctx context.Context, src, dst string) error {
	c.calls++
	return c.Driver.Move(ctx, src, dst)
}

func TestCheckedRefusesBeforeTheDriver(t *testing.T) {
	inner := &counting{Driver: inmemory.New()}
	d := driver.Checked(inner)
	if driver.Checked(d) != d {
		t.Error("Checked wrapped a checked driver again")
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"relative", func() error { _, err := d.GetContent(t.Context(), "a/b"); return err }},
		{"dotdot", func() error { _, err := d.GetContent(t.Context(), "/a/../b"); return err }},
		{"empty component", func() error { _, err := d.GetContent(t.Context(), "/a//b"); return err }},
		{"bad character", func() error { _, err := d.GetContent(t.Context(), "/a/%2e"); return err }},
		{"move destination", func() error { return d.Move(t.Context(), "/a", "/../etc") }},
		{"cancelled", func() error { _, err := d.GetContent(cancelled, "/a"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner.calls = 0
			if err := tc.call(); err == nil {
				t.Fatal("accepted")
			}
			if inner.calls != 0 {
				t.Fatal("the wrapped driver was called")
			}
		})
	}
	if err := d.Delete(t.Context(), "/"); err == nil {
		t.Error("Delete(\"/\") accepted")
	}
}
