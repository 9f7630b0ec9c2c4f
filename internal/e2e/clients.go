package e2e

import (
	"encoding/json"
	"os"
	"testing"
)

// BridgeEntry reads the entry name of the Claude Desktop config file at path (mcpServers.NAME), as
// `authkeeper clients --write claude-desktop` writes it, and returns the command it runs and its
// arguments. It fails t when the file cannot be read or parsed.
func BridgeEntry(t testing.TB, path, name string) (command string, args []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		MCPServers map[string]struct {
			Command string   `json:"command"`
			Args    []string `json:"args"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	e := cfg.MCPServers[name]
	return e.Command, e.Args
}
