package app

import (
	"fmt"

	"github.com/authkeeper/authkeeper/app/engine"
)

// serveOpts are the flags of `serve` and of the tray (`authkeeper [tray]`), which runs serve.
type serveOpts struct {
	proxyAddr, store, clientMetadataURL string
	fleet                               fleetOpts
}

// parseServeFlags parses the flags of serve or tray (name) into o; both take no arguments.
func parseServeFlags(name string, args []string, e env, o *serveOpts) error {
	fs := newFlags(name, e)
	fs.StringVar(&o.proxyAddr, "proxy-addr", e.getenv("AUTHKEEPER_PROXY_ADDR"), "loopback `host:port` for the MCP proxy "+
		"(else $AUTHKEEPER_PROXY_ADDR, the settings' proxy_port, "+engine.DefaultProxyAddr+")")
	fs.StringVar(&o.store, "store", e.getenv("AUTHKEEPER_STORE"), "the credential store, `KIND` keychain, file (plain text, 0600) "+
		"or etcd://host:port[,host:port]/prefix (a fleet's, encrypted with the fleet key); "+
		"else $AUTHKEEPER_STORE, then the settings' choice, then keychain")
	fs.StringVar(&o.fleet.keyFile, "fleet-key-file", "", "with an etcd store: the fleet key `FILE` (else $AUTHKEEPER_FLEET_KEY_FILE, "+
		"then the key itself in $AUTHKEEPER_FLEET_KEY)")
	fs.StringVar(&o.fleet.instance, "instance", "", "with an etcd store: this instance's `NAME` in the fleet "+
		"(else $AUTHKEEPER_INSTANCE, then the host name and a random suffix)")
	fs.StringVar(&o.clientMetadataURL, "client-metadata-url", "", "the https `URL` where authkeeper's client metadata "+
		"document is hosted (default: the settings' prefs.client_metadata_url)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("usage: authkeeper %s [flags] (%q is not a flag)", name, pos[0])
	}
	return nil
}
