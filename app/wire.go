package app

// newEngine is NewEngine with the MCP proxy and the control API as its front ends: the engine every
// command of the program starts.
func newEngine(cfg Config) (*Engine, error) {
	cfg.Proxy, cfg.Control = proxyFrontEnd, controlFrontEnd
	return NewEngine(cfg)
}
