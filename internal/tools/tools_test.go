package tools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GATEHOUSE_TOOLS", dir)
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := Dir(); got != bin {
		t.Fatalf("Dir() = %q, want %q", got, bin)
	}
	prog := filepath.Join(bin, "gatehouse-test-tool")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Find("gatehouse-test-tool"); err != nil || got != prog {
		t.Fatalf("Find = %q, %v; want %q", got, err, prog)
	}
	// Not executable: not found there.
	if err := os.Chmod(prog, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find("gatehouse-test-tool"); err == nil || !strings.Contains(err.Error(), "install-deps.sh") {
		t.Fatalf("Find of a non-executable file: err = %v, want a hint to install", err)
	}
	// PATH is searched too.
	if got, err := Find("sh"); err != nil || got == "" {
		t.Fatalf("Find(sh) = %q, %v", got, err)
	}
}
