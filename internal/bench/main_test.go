//go:build linux

package bench

import (
	"os"
	"testing"
)

// TestMain runs the benchmarks' client process when clientEnv is set (see runClient), and the tests
// otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) == "1" {
		os.Exit(clientMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
