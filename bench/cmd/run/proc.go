package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Every process the driver starts gets its own process group, so that stopping it stops what it
// started too, and a terminal's Ctrl-C reaches only the driver, which then stops them itself.
// Pdeathsig is the backstop when the driver is killed outright: the kernel kills the children.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// commandContext is a short-lived command (ghz, a build, a one-shot check) under a CPU prefix
// (taskset), killed with its process group when ctx ends.
func commandContext(ctx context.Context, prefix []string, args ...string) *exec.Cmd {
	argv := append(append([]string{}, prefix...), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// proc is a long-running process (a server) the driver started.
type proc struct {
	name string
	log  string // where its stderr goes (and stdout, unless it was given its own file)
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited and been waited for
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends p's process group: SIGTERM, then SIGKILL if it is still there after 5 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	// The group may outlive its leader (a child it forked): make sure nothing is left.
	syscall.Kill(-p.pid(), syscall.SIGKILL)
}

// procs is every process started, to be stopped at the end whatever happens.
type procs struct{ all []*proc }

// start runs argv (under prefix) in the background, its stderr in log and its stdout in out
// ("" for log, "-" to discard).
func (ps *procs) start(name string, prefix []string, log, out string, args ...string) (*proc, error) {
	argv := append(append([]string{}, prefix...), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = sysProcAttr()
	lf, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own descriptor
	cmd.Stderr, cmd.Stdout = lf, lf
	switch out {
	case "-":
		cmd.Stdout = nil
	case "":
	default:
		of, err := os.Create(out)
		if err != nil {
			return nil, err
		}
		defer of.Close()
		cmd.Stdout = of
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, log: log, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	ps.all = append(ps.all, p)
	return p, nil
}

// stopAll stops every process still running, all at once.
func (ps *procs) stopAll() {
	done := make(chan struct{})
	for _, p := range ps.all {
		go func() { p.stop(); done <- struct{}{} }()
	}
	for range ps.all {
		<-done
	}
	ps.all = nil
}

// waitPort waits until addr accepts connections (30 s at most: a server with 10,000 resources
// took 8 s to start on a loaded machine), failing early with the tail of p's log when p exits
// first.
func waitPort(ctx context.Context, addr string, p *proc) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before listening on %s:\n%s", p.name, addr, logTail(p.log))
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	msg := fmt.Sprintf("nothing listens on %s", addr)
	if p != nil {
		msg += fmt.Sprintf(" (%s):\n%s", p.name, logTail(p.log))
	}
	return fmt.Errorf("%s", msg)
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), 5)
}

// sleep is time.Sleep that ends early, with ctx's error, when ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
