//go:build !headless

package tray

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
)

// advanced is the Add window's "Advanced" part: what real authorization servers need beyond the MCP
// spec — extra scopes (Entra's api://…/.default), extra parameters (Auth0's and Okta's audience=…),
// signing in to an AS that supports PKCE without advertising it, and a machine identity
// (client_credentials) instead of a person. Everything in it is kept in the server's settings and
// reused on every sign-in. Fields are owned by the UI goroutine.
type advanced struct {
	box               *widget.Accordion
	scopes, params    *widget.Entry
	assumePKCE        *widget.Check
	clientCredentials *widget.Check
}

func newAdvanced() *advanced {
	a := &advanced{}
	a.scopes = widget.NewEntry()
	a.scopes.SetPlaceHolder("extra scopes, e.g. api://my-app/.default offline_access")
	a.params = widget.NewEntry()
	a.params.SetPlaceHolder("extra parameters, e.g. audience=https://api.example.com")
	a.assumePKCE = widget.NewCheck("The authorization server supports PKCE although it does not say so", nil)
	a.clientCredentials = widget.NewCheck("Machine identity: sign in with the client id and secret above (no browser)", nil)
	form := widget.NewForm(widget.NewFormItem("Scopes", a.scopes), widget.NewFormItem("Parameters", a.params))
	a.box = widget.NewAccordion(widget.NewAccordionItem("Advanced",
		container.NewVBox(form, a.assumePKCE, a.clientCredentials)))
	return a
}

// apply copies the Advanced settings into req, or says what is wrong with them.
func (a *advanced) apply(req *engine.AddRequest) error {
	req.Scopes = strings.Fields(strings.ReplaceAll(a.scopes.Text, ",", " "))
	params, err := parseParams(a.params.Text)
	if err != nil {
		return err
	}
	req.Params = params
	req.AssumePKCE = a.assumePKCE.Checked
	req.ClientCredentials = a.clientCredentials.Checked
	return nil
}

// parseParams reads "k=v" pairs separated by spaces, commas or new lines. A parameter the protocol
// itself sets (the client id, PKCE, state, the redirect) is refused: overriding it would break the
// sign-in or its protections.
func parseParams(text string) (map[string]string, error) {
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	if len(fields) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q must look like name=value", f)
		}
		if reserved[k] {
			return nil, fmt.Errorf("parameter %q is set by authkeeper itself", k)
		}
		out[k] = v
	}
	return out, nil
}

// reserved are the parameters authkeeper sets on every authorization or token request.
var reserved = map[string]bool{
	"client_id": true, "client_secret": true, "redirect_uri": true, "state": true, "code": true,
	"code_challenge": true, "code_challenge_method": true, "code_verifier": true, "response_type": true,
	"grant_type": true, "refresh_token": true, "client_assertion": true, "client_assertion_type": true,
}

// pkceAdvice is what the finding adds when the AS does not advertise PKCE.
func pkceAdvice(p *oauth.Probe) string {
	switch p.PKCE {
	case oauth.PKCEMissing:
		return " It does not advertise PKCE, which the MCP spec requires: if you know it supports PKCE " +
			"(S256), tick that under Advanced."
	case oauth.PKCEAssumed:
		return " It does not advertise PKCE, but it is known to support it: authkeeper uses it anyway."
	}
	return ""
}
