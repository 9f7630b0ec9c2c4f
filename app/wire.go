package app

import (
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
)

// newEngine is engine.New with the MCP proxy and the control API as its front ends: the engine every
// command of the program starts.
func newEngine(cfg engine.Config) (*engine.Engine, error) {
	cfg.Proxy, cfg.Control = proxy.FrontEnd, control.FrontEnd
	return engine.New(cfg)
}
