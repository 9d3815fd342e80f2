// Package bench holds the benchmark harness: the driver (cmd/run, `go run ./bench/cmd/run`), the
// no-op baseline and the helpers in subdirectories. This package itself only tests the driver
// end to end; see README.md for what it measures and how to read the results.
package bench
