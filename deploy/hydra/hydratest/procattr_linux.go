package hydratest

import "syscall"

// procAttr has the kernel kill Hydra when the test process dies: a test binary that panics
// runs no cleanup, and an orphaned Hydra would keep its ports and memory on a shared machine.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
