package testbed

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEtcdClusterDataDirScanFindsWhatWasWritten pins what the fleet's "etcd sees no plaintext" proof
// relies on: the scan of the data directories finds a plaintext value written through the cluster, in
// the write-ahead logs of a majority, so a scan that finds nothing means something. (Stopping, restarting
// and Leader are exercised by app/fleet's quorum test.)
func TestEtcdClusterDataDirScanFindsWhatWasWritten(t *testing.T) {
	t.Parallel() // its own cluster; the time is etcd's start
	c := StartEtcdCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli := c.Client(t)
	needle := "plaintext-" + randomString(t)
	if _, err := cli.Put(ctx, "/probe", needle); err != nil {
		t.Fatalf("put: %v", err)
	}
	// A committed write is in the write-ahead log of a majority before Put returns.
	found := c.ScanDataDirs([]byte(needle))
	inWAL := 0
	for _, m := range []string{"m0/", "m1/", "m2/"} {
		if slices.ContainsFunc(found, func(f string) bool { return strings.HasPrefix(f, m) && strings.Contains(f, "/wal/") }) {
			inWAL++
		}
	}
	if inWAL < 2 {
		t.Errorf("ScanDataDirs found the value in %v; want it in the write-ahead logs of at least 2 members", found)
	}
	if got := c.ScanDataDirs([]byte("never-written-" + randomString(t))); len(got) != 0 {
		t.Errorf("ScanDataDirs found a value never written in %v", got)
	}

	if _, err := c.Leader(ctx); err != nil {
		t.Fatalf("leader: %v", err)
	}
}

// TestFileContainsFindsANeedleAcrossChunks: the scan reads 1 MB at a time; a value that straddles two
// reads must still be found.
func TestFileContainsFindsANeedleAcrossChunks(t *testing.T) {
	needle := []byte("needle-across-the-boundary")
	first := 1<<20 + len(needle) // fileContains' first read
	for _, at := range []int{0, first - 5, first - len(needle), first + 1<<20 - 3, 3 << 20} {
		data := make([]byte, 3<<20+len(needle))
		copy(data[at:], needle)
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if hit, err := fileContains(path, needle); err != nil || !hit {
			t.Errorf("needle at %d: found %v, %v", at, hit, err)
		}
		if hit, _ := fileContains(path, []byte("absent")); hit {
			t.Errorf("found a needle that is not there")
		}
	}
}
