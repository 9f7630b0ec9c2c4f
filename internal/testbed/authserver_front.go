package testbed

import (
	"net/http"
	"net/http/httputil"
	"net/url"
)

// ReverseProxy returns a handler that forwards each request, path and query unchanged, to the
// server's listener (ListenURL). It is the front an MCP server puts before the AS when
// AuthServerOptions.IssuerOrigin names the MCP server's origin: mount it on every path the MCP
// server does not serve itself (the AS's routes, its /interaction/… pages, its well-known
// metadata). The AS generates every URL under Issuer whatever Host header it receives.
func (a *AuthServer) ReverseProxy() http.Handler {
	target, err := url.Parse(a.root)
	if err != nil {
		panic("testbed: bad ListenURL " + a.root) // built by NewAuthServer; cannot happen
	}
	return &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
		r.SetXForwarded()
	}}
}
