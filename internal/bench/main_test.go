//go:build linux

package bench

import (
	"os"
	"testing"
)

// TestMain runs the benchmarks' client process when clientEnv is set (see runClient), the instant
// stdio server when instantEnv is (see instantMain), and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) == "1" {
		os.Exit(clientMain(os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv(instantEnv) == "1" {
		os.Exit(instantMain(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}
