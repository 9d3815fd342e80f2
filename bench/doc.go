// Package bench holds the benchmark harness (run.sh, the no-op baseline and helpers in
// subdirectories); this package itself only tests run.sh.
package bench
