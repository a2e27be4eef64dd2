//go:build unix

package extprog

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the program in a process group of its own and
// makes cancellation kill the whole group, so that children the program
// started (a shell pipeline, say) do not outlive it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
