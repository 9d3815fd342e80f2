//go:build !linux

package hydratest

import "syscall"

// procAttr: only Linux can tie a child's life to its parent's; elsewhere cleanup alone stops it.
func procAttr() *syscall.SysProcAttr { return nil }
