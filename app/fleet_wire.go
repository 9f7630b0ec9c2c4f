package app

import (
	"context"
	"fmt"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/fleet"
	"github.com/authkeeper/authkeeper/keychain"
)

// envInstance names this instance in a fleet (the default of serve's --instance).
const envInstance = "AUTHKEEPER_INSTANCE"

// fleetOpts say where a fleet's key is and what this instance is called (serve's flags, else the
// environment: AUTHKEEPER_FLEET_KEY_FILE, AUTHKEEPER_FLEET_KEY, AUTHKEEPER_INSTANCE).
type fleetOpts struct {
	// keyFile and instance are serve's --fleet-key-file and --instance.
	keyFile, instance string
}

// fleetOpener returns the engine's OpenFleet: it opens the etcd store named by an etcd:// URL with the
// fleet key, as one instance of the fleet.
func fleetOpener(e env, o fleetOpts) func(string) (keychain.Store, engine.Fleet, error) {
	return func(url string) (keychain.Store, engine.Fleet, error) {
		cfg, err := fleet.ParseURL(url)
		if err != nil {
			return nil, nil, err
		}
		keyFile := o.keyFile
		if keyFile == "" {
			keyFile = e.getenv(envFleetKeyFile)
		}
		if cfg.Keys, err = fleet.LoadKeys(keyFile, e.getenv(envFleetKey)); err != nil {
			return nil, nil, fmt.Errorf("the fleet's store needs the fleet key (--fleet-key-file, $AUTHKEEPER_FLEET_KEY_FILE "+
				"or $AUTHKEEPER_FLEET_KEY; make one with `authkeeper fleet keygen`): %w", err)
		}
		cfg.Instance = o.instance
		if cfg.Instance == "" {
			cfg.Instance = e.getenv(envInstance)
		}
		cfg.Version = Version
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		f, err := fleet.Open(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return f, fleetGate{f}, nil
	}
}

// fleetGate is *fleet.Fleet as the engine sees it.
type fleetGate struct{ f *fleet.Fleet }

var _ engine.Fleet = fleetGate{}

func (g fleetGate) Leading(name string) bool              { return g.f.Leading(name) }
func (g fleetGate) Ask(name, digest, reason string) error { return g.f.Ask(name, digest, reason) }
func (g fleetGate) Join(name string)                      { g.f.Join(name) }
func (g fleetGate) Leave(name string)                     { g.f.Leave(name) }
func (g fleetGate) Close() error                          { return g.f.Close() }

func (g fleetGate) Watch(ev engine.FleetEvents) {
	g.f.SetHandler(fleet.Handler{
		Changed: func(name string, _ uint64) { ev.Changed(name) },
		Leader:  ev.Leader,
		Asked:   ev.Asked,
	})
}

func (g fleetGate) View(ctx context.Context) (engine.FleetView, error) {
	st, err := g.f.Status(ctx)
	if err != nil {
		return engine.FleetView{}, err
	}
	v := engine.FleetView{Instance: st.Instance, Read: time.Now(), Servers: map[string]engine.FleetServer{}}
	for _, m := range st.Members {
		v.Members = append(v.Members, engine.FleetMember{ID: m.ID, Host: m.Host, PID: m.PID, Started: m.Started, Version: m.Version})
	}
	for name, s := range st.Servers {
		v.Servers[name] = engine.FleetServer{Owner: s.Owner, Serving: s.Serving, LastWriter: s.LastWriter, LastWrite: s.LastWrite}
	}
	return v, nil
}
