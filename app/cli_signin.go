package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/app/control"
	"net/url"
	"strings"
	"time"
)

// listFlag collects repeatable values; each may hold several, separated by spaces (--scope "a b").
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.Fields(v)...)
	return nil
}

// paramFlag collects repeatable k=v parameters.
type paramFlag map[string]string

func (p paramFlag) String() string { return "" }
func (p paramFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not k=v", v)
	}
	if _, dup := p[k]; dup {
		return fmt.Errorf("parameter %q given twice", k)
	}
	p[k] = val
	return nil
}

// showProgress prints what a sign-in needs from the user: the authorization URL (once discovery and
// registration succeeded, so nothing is promised that then fails) or the device code.
func showProgress(e env, target string) control.SignInProgress {
	return control.SignInProgress{
		OnURL: func(u string) {
			fmt.Fprintf(e.stdout, "Signing in to %s in your browser…\nIf your browser did not open, open this URL: %s\n", target, u)
		},
		OnDevice: func(d control.DeviceCode) {
			fmt.Fprintf(e.stdout, "To sign in, open %s and enter the code %s\n", d.VerificationURI, d.UserCode)
			if d.VerificationURIComplete != "" {
				fmt.Fprintf(e.stdout, "(or open %s)\n", d.VerificationURIComplete)
			}
		},
	}
}

const addUsage = "usage: authkeeper add URL [--name NAME] [--client-id ID [--redirect-port N] [--client-key-file PEM [--client-key-id KID]]]\n" +
	"        [--scope S]... [--param k=v]... [--assume-pkce] [--device | --client-credentials | --token-stdin [--token-expires DATE] |\n" +
	"        --cross-app --idp-token-endpoint URL --idp-client-id ID [--id-token-stdin]]"

func cmdAdd(ctx context.Context, args []string, e env) error {
	body, store, err := parseAdd(args, e)
	if err != nil {
		return err
	}
	r, done, err := connect(ctx, e, store, nil)
	if err != nil {
		return err
	}
	defer done()
	if err := r.Add(ctx, body, showProgress(e, body.URL)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Added %s (%s)\n", body.Name, body.URL)
	return nil
}

// parseAdd reads add's command line, and the secrets from the environment, stdin and the key file,
// into the control call's body; it refuses what cannot work before anything is asked of a server.
// store is the --store flag.
func parseAdd(args []string, e env) (body control.AddBody, store string, err error) {
	fs := newFlags("add", e)
	name := fs.String("name", "", "the server's `NAME` (default: from the URL's host)")
	clientID := fs.String("client-id", "", "a client `ID` registered by hand (Entra ID and other enterprise IdPs); its secret, if any, from $"+envClientSecret)
	port := fs.Int("redirect-port", 0, "the loopback `PORT` registered with the client id (default: any)")
	keyFile := fs.String("client-key-file", "", "a `PEM` file: the private key of the client id, for private_key_jwt client authentication")
	keyID := fs.String("client-key-id", "", "the key id (`KID`) the authorization server knows the private key by")
	device := fs.Bool("device", false, "sign in with a device code instead of the browser")
	var scopes listFlag
	fs.Var(&scopes, "scope", "a `SCOPE` to request besides the server's (repeatable, or several separated by spaces)")
	params := paramFlag{}
	fs.Var(params, "param", "`k=v`: a parameter for the authorization and token requests, e.g. audience=… (repeatable)")
	assumePKCE := fs.Bool("assume-pkce", false, "sign in although the authorization server does not advertise PKCE S256 (it is sent anyway)")
	cc := fs.Bool("client-credentials", false, "a machine identity: the client_credentials grant with --client-id and $"+envClientSecret+" or --client-key-file; no browser")
	crossApp := fs.Bool("cross-app", false, "enterprise-managed authorization through your identity provider (cross-app access): "+
		"with --client-id (its secret from $"+envClientSecret+"), --idp-token-endpoint, --idp-client-id (its secret from $"+
		envIdPClientSecret+") and your ID token from $"+envIDToken+" or --id-token-stdin; no browser")
	idpTokenEndpoint := fs.String("idp-token-endpoint", "", "with --cross-app: the identity provider's token endpoint `URL`")
	idpClientID := fs.String("idp-client-id", "", "with --cross-app: authkeeper's client `ID` at the identity provider")
	idTokenStdin := fs.Bool("id-token-stdin", false, "with --cross-app: read your ID token from the identity provider from stdin (or set $"+envIDToken+")")
	tokenStdin := fs.Bool("token-stdin", false, "read a static token or API key from stdin (or set $"+envToken+")")
	tokenExpires := fs.String("token-expires", "", "when the static token expires: a `DATE` such as 2026-12-31 (its start, local time) or an RFC 3339 time")
	storeFlag := fs.String("store", "", "the credential store, `KIND` keychain or file, of the engine this command starts when no authkeeper is running")
	pos, err := parse(fs, args)
	if err != nil {
		return control.AddBody{}, "", err
	}
	if len(pos) != 1 {
		return control.AddBody{}, "", errors.New(addUsage)
	}
	body = control.AddBody{Name: *name, URL: pos[0], ClientID: *clientID, Secret: e.getenv(envClientSecret), KeyID: *keyID,
		Port: *port, Device: *device, Scopes: scopes, AssumePKCE: *assumePKCE, ClientCredentials: *cc,
		CrossApp: *crossApp, IdPTokenEndpoint: *idpTokenEndpoint, IdPClientID: *idpClientID}
	if len(params) > 0 {
		body.Params = params
	}
	if body.Name == "" {
		u, err := url.Parse(pos[0])
		if err != nil || u.Hostname() == "" {
			return control.AddBody{}, "", fmt.Errorf("%q is not a server URL", pos[0])
		}
		body.Name = strings.Split(u.Hostname(), ".")[0]
	}
	if *keyFile != "" {
		if body.Key, err = readKeyFile(*keyFile); err != nil {
			return control.AddBody{}, "", err
		}
	}
	if *tokenStdin && *idTokenStdin {
		return control.AddBody{}, "", errors.New("--token-stdin and --id-token-stdin both read stdin: choose one")
	}
	if body.Token, err = staticToken(e, *tokenStdin); err != nil {
		return control.AddBody{}, "", err
	}
	switch {
	case *crossApp:
		// Read only for --cross-app: a variable left in the environment must not be sent anywhere else.
		if body.IDToken, err = idToken(e, *idTokenStdin); err != nil {
			return control.AddBody{}, "", err
		}
		body.IdPSecret = e.getenv(envIdPClientSecret)
	case *idTokenStdin:
		return control.AddBody{}, "", errors.New("--id-token-stdin goes with --cross-app")
	}
	if *tokenExpires != "" {
		if body.Token == "" {
			return control.AddBody{}, "", errors.New("--token-expires goes with a static token (--token-stdin or $" + envToken + ")")
		}
		if body.TokenExpires, err = parseExpiry(*tokenExpires); err != nil {
			return control.AddBody{}, "", err
		}
	}
	return body, *storeFlag, checkAdd(body)
}

// checkAdd refuses combinations of add's options that cannot work, before anything is asked of a server.
func checkAdd(b control.AddBody) error {
	modes := 0
	for _, on := range []bool{b.Device, b.ClientCredentials, b.CrossApp, b.Token != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return errors.New("choose one of --device, --client-credentials, --cross-app and a static token")
	case !b.CrossApp && (b.IdPTokenEndpoint != "" || b.IdPClientID != ""):
		return errors.New("--idp-token-endpoint and --idp-client-id go with --cross-app")
	case b.CrossApp && b.ClientID == "":
		return errors.New("--cross-app needs --client-id: authkeeper's client at the server's authorization server")
	case b.CrossApp && (b.IdPTokenEndpoint == "" || b.IdPClientID == ""):
		return errors.New("--cross-app needs --idp-token-endpoint and --idp-client-id")
	case b.CrossApp && b.IDToken == "":
		return errors.New("--cross-app needs your ID token from the identity provider in $" + envIDToken + " or on stdin (--id-token-stdin)")
	case b.ClientCredentials && b.ClientID == "":
		return errors.New("--client-credentials needs --client-id")
	case b.ClientCredentials && b.Secret == "" && b.Key == "":
		return errors.New("--client-credentials needs the client's secret in $" + envClientSecret + " or its private key in --client-key-file")
	case (b.Key != "" || b.KeyID != "" || b.Port != 0) && b.ClientID == "":
		return errors.New("--client-key-file, --client-key-id and --redirect-port go with --client-id")
	}
	return nil
}

// parseExpiry reads --token-expires: an RFC 3339 time, or a date (its start, local time).
func parseExpiry(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--token-expires %q: want a date such as 2026-12-31 or an RFC 3339 time", v)
}

func cmdLogin(ctx context.Context, args []string, e env) error {
	fs := newFlags("login", e)
	device := fs.Bool("device", false, "sign in with a device code instead of the browser")
	idTokenStdin := fs.Bool("id-token-stdin", false, "a cross-app access server: read your new ID token from the identity provider from stdin (or set $"+envIDToken+")")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: authkeeper login NAME [--device | --id-token-stdin]")
	}
	body := control.LoginBody{Device: *device}
	if body.IDToken, err = idToken(e, *idTokenStdin); err != nil {
		return err
	}
	r, done, err := connect(ctx, e, "", nil)
	if err != nil {
		return err
	}
	defer done()
	if err := r.Login(ctx, pos[0], body, showProgress(e, pos[0])); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Signed in to %s\n", pos[0])
	return nil
}
