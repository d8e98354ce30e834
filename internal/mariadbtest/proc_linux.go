package mariadbtest

import "syscall"

// sysProcAttr makes the kernel kill mariadbd when the test process dies, so a crashed or
// interrupted test run leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
