//go:build !unix

package extprog

import "os/exec"

// setProcessGroup: without process groups only the program itself is
// killed on cancellation (exec.CommandContext's default).
func setProcessGroup(*exec.Cmd) {}
