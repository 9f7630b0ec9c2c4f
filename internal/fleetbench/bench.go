// Package fleetbench runs a fleet of real authkeeper binaries for the proofs of issue 15 (one
// refresher per grant across machines, on etcd): a real three-member etcd cluster
// (testbed.StartEtcdCluster), oidc-provider issuing short-lived opaque access tokens with rotating
// refresh tokens and reuse detection, a Go SDK MCP server that introspects every token, and several
// installations (internal/e2e: private HOME, keyring and fake browser each) running
// `authkeeper serve --store etcd://…` with the fleet key, as separate processes.
//
// It keeps the evidence the proofs judge: a watch of every key under the fleet's prefix from revision
// 1, every stored record opened with the fleet key (so the tests know each token the fleet ever held),
// refreshes as the AS counted them and as each instance's audit log recorded them, and the outcome of
// every call an agent made through an instance's proxy. It is a test helper package: nothing in the
// product imports it.
package fleetbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	akfleet "github.com/authkeeper/authkeeper/app/fleet"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// Server is the name every instance gives the shared grant.
const Server = "bench"

// LeaseTTL is the fleet's election lease (app/fleet's default, which `serve` does not change): an
// owner that dies is replaced once it has passed.
const LeaseTTL = 5 * time.Second

// Options configures New. The zero value is three instances and 10-s access tokens.
type Options struct {
	// AccessTokenTTL is the lifetime of the AS's access tokens. Default 10 s: short-lived tokens
	// refresh at half-life, so a 10-s token still has about 9 s left when its owner is killed right
	// after a refresh, which outlasts the lease (5 s) and the takeover.
	AccessTokenTTL time.Duration
	// Instances is how many `authkeeper serve` processes share the grant. Default 3.
	Instances int
}

// Bench is a fleet of authkeeper instances on one etcd cluster, sharing one grant. Safe for
// concurrent use once New has returned.
type Bench struct {
	Cluster *testbed.EtcdCluster
	AS      *testbed.AuthServer
	MCP     *testbed.MCPServer
	// Store is the etcd:// URL every instance is given; Prefix its key prefix.
	Store, Prefix string
	// Instances are the installations, in order box1, box2, …
	Instances []*Instance
	// TTL is the access-token lifetime.
	TTL time.Duration

	keyLine string
	keys    *akfleet.Keys
	watch   *watch
}

// Instance is one installation of the fleet. Safe for concurrent use.
type Instance struct {
	*e2e.Install
	// ID is the instance's name in the fleet (box1, …).
	ID string

	mu     sync.Mutex
	killed time.Time
}

// New starts the cluster, the watch of the fleet's prefix, the AS, the MCP server and the instances.
// The first instance gets the store, its name and the key file as `serve` flags; the others get them
// from the environment ($AUTHKEEPER_STORE, $AUTHKEEPER_INSTANCE, $AUTHKEEPER_FLEET_KEY with the key
// line itself), so both ways in are exercised. The key file lies outside every installation's
// directories: those are searched for tokens and for the key.
func New(t *testing.T, opts Options) *Bench {
	t.Helper()
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = 10 * time.Second
	}
	if opts.Instances == 0 {
		opts.Instances = 3
	}
	e2e.MustBinary(t) // before any install moves HOME (the go command's caches live there)
	b := &Bench{Cluster: testbed.StartEtcdCluster(t, 3), Prefix: "/fleet-bench", TTL: opts.AccessTokenTTL}
	b.Store = b.Cluster.StoreURL(b.Prefix)
	b.watch = startWatch(t, b.Cluster.Endpoints(), b.Prefix+"/")
	var err error
	if b.keyLine, err = akfleet.NewKeyLine("k1"); err != nil {
		t.Fatal(err)
	}
	if b.keys, err = akfleet.LoadKeys("", b.keyLine); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(keyFile, []byte(b.keyLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	b.AS = testbed.NewAuthServer(t, testbed.AuthServerOptions{AccessTokenTTL: opts.AccessTokenTTL, Opaque: true})
	mo := testbed.MCPServerOptions{Issuer: b.AS.Issuer, RequiredScopes: []string{"mcp:read"}, Opaque: true}
	mo.IntrospectionClientID, mo.IntrospectionClientSecret = b.AS.IntrospectionClient()
	b.MCP = testbed.GoMCPServer(t, mo)

	for i := range opts.Instances {
		id := fmt.Sprintf("box%d", i+1)
		var o e2e.Options
		if i == 0 {
			o.ServeArgs = []string{"--store", b.Store, "--fleet-key-file", keyFile, "--instance", id}
		} else {
			o.Env = []string{"AUTHKEEPER_STORE=" + b.Store, "AUTHKEEPER_FLEET_KEY=" + b.keyLine, "AUTHKEEPER_INSTANCE=" + id}
		}
		b.Instances = append(b.Instances, &Instance{Install: e2e.NewInstall(t, o), ID: id})
	}
	return b
}

// SignIn adds the grant on the first instance (the browser flow, through its scripted browser), then
// on every other instance, which joins the grant the fleet holds: the test fails if a join opened a
// browser or redeemed an authorization code at the AS.
func (b *Bench) SignIn(t *testing.T) {
	t.Helper()
	b.Instances[0].MustCLI(nil, "add", b.MCP.URL, "--name", Server)
	codes := b.AS.TokenRequests(t, "authorization_code")
	if codes != 1 {
		t.Fatalf("the sign-in redeemed %d authorization codes, want 1", codes)
	}
	for _, in := range b.Instances[1:] {
		opened := len(in.Browser.Opened())
		in.MustCLI(nil, "add", b.MCP.URL, "--name", Server)
		if n := len(in.Browser.Opened()) - opened; n != 0 {
			t.Fatalf("joining the fleet's grant on %s opened the browser %d time(s)", in.ID, n)
		}
	}
	if n := b.AS.TokenRequests(t, "authorization_code") - codes; n != 0 {
		t.Fatalf("joining the fleet's grant on %d instances redeemed %d more authorization code(s)", len(b.Instances)-1, n)
	}
}

// Live returns the instances not killed.
func (b *Bench) Live() []*Instance {
	var out []*Instance
	for _, in := range b.Instances {
		if in.Killed().IsZero() {
			out = append(out, in)
		}
	}
	return out
}

// Kill sends SIGKILL to the instance's `serve` and returns when it has exited.
func (in *Instance) Kill() time.Time {
	in.Serve().Kill()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.killed = time.Now()
	return in.killed
}

// Killed is when Kill killed the instance (zero: it runs).
func (in *Instance) Killed() time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.killed
}

// StatusJSON runs `authkeeper status --json` on the instance and decodes it; the test fails if it
// exits non-zero or prints something else.
func (in *Instance) StatusJSON(t testing.TB) engine.Health {
	t.Helper()
	r := in.MustCLI(nil, "status", "--json")
	var h engine.Health
	if err := json.Unmarshal([]byte(r.Stdout), &h); err != nil {
		t.Fatalf("authkeeper status --json on %s: %v\n%s", in.ID, err, r.Stdout)
	}
	return h
}

// FleetOf returns the grant's fleet state in a status document (nil when it has none).
func FleetOf(h engine.Health) *engine.FleetServer {
	for _, s := range h.Servers {
		if s.Name == Server {
			return s.Fleet
		}
	}
	return nil
}

// Leading reports whether the instance's engine is the grant's refresher now, from its /healthz
// document (what `status --json` prints) over the control API; false when it does not answer.
func (in *Instance) Leading(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := in.Remote.Health(ctx)
	if err != nil {
		return false
	}
	f := FleetOf(h)
	return f != nil && f.Leading
}

// Owner returns the instance that leads the grant, as `status --json` on the given instance names
// it (fleet.owner), cross-checked with that instance's own fleet.leading; the test fails if no single
// live instance leads within the time given.
func (b *Bench) Owner(t testing.TB, on *Instance, within time.Duration) *Instance {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if f := FleetOf(on.StatusJSON(t)); f != nil && f.Owner != "" {
			for _, in := range b.Live() {
				if in.ID == f.Owner && in.Leading(context.Background()) {
					return in
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live instance leads %s after %s (status --json on %s: %+v)", Server, within, on.ID, FleetOf(on.StatusJSON(t)))
		}
		time.Sleep(100 * time.Millisecond) // another process's election
	}
}

// WaitLeader polls the live instances until one other than not leads, and returns it with the time
// it was first seen leading (nil when none did within the time given).
func (b *Bench) WaitLeader(not *Instance, within time.Duration) (*Instance, time.Time) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, in := range b.Live() {
			if in != not && in.Leading(context.Background()) {
				return in, time.Now()
			}
		}
		time.Sleep(50 * time.Millisecond) // another process's election
	}
	return nil, time.Time{}
}

// Instance returns the instance named id (nil if none is).
func (b *Bench) Instance(id string) *Instance {
	for _, in := range b.Instances {
		if in.ID == id {
			return in
		}
	}
	return nil
}

// KeySecret is the secret part of the fleet key (its base64), searched for like a token.
func (b *Bench) KeySecret() string {
	_, secret, _ := strings.Cut(b.keyLine, ":")
	return secret
}
