package testbed

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// These tests drive each provider profile with raw HTTP and the scripted browser, and check that the
// quirk the profile stands for is really served.

func TestProfileEntraServesTenantAndTemplateMetadataWithoutPKCEOrDCR(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileEntra, Resource: benchResource})
	if as.RegistrationURL != "" || !strings.HasSuffix(as.Issuer, "/"+as.TenantID+"/v2.0") ||
		as.AdvertisedIssuer != as.ListenURL+"/organizations/v2.0" || as.AppScope != "api://"+as.AppID+"/.default" {
		t.Fatalf("AuthServer = %+v", as)
	}
	absent := []string{"code_challenge_methods_supported", "registration_endpoint", "revocation_endpoint",
		"introspection_endpoint", "authorization_response_iss_parameter_supported"}
	for _, tc := range []struct {
		loc, issuer, endpoints string
	}{
		{as.Issuer + "/.well-known/openid-configuration", as.Issuer, as.Issuer},
		{as.ListenURL + "/.well-known/oauth-authorization-server/" + as.TenantID + "/v2.0", as.Issuer, as.Issuer},
		{as.AdvertisedIssuer + "/.well-known/openid-configuration", as.ListenURL + "/{tenantid}/v2.0", as.AdvertisedIssuer},
		{as.ListenURL + "/.well-known/openid-configuration/organizations/v2.0", as.ListenURL + "/{tenantid}/v2.0", as.AdvertisedIssuer},
		{as.ListenURL + "/.well-known/oauth-authorization-server/organizations/v2.0", as.ListenURL + "/{tenantid}/v2.0", as.AdvertisedIssuer},
	} {
		var meta map[string]any
		if status := getJSON(t, tc.loc, &meta); status != 200 {
			t.Fatalf("GET %s: %d", tc.loc, status)
		}
		if meta["issuer"] != tc.issuer || meta["authorization_endpoint"] != tc.endpoints+"/auth" ||
			meta["token_endpoint"] != tc.endpoints+"/token" {
			t.Errorf("GET %s: issuer %v, endpoints %v %v", tc.loc, meta["issuer"], meta["authorization_endpoint"], meta["token_endpoint"])
		}
		for _, k := range absent {
			if _, ok := meta[k]; ok {
				t.Errorf("GET %s: has %s", tc.loc, k)
			}
		}
	}
}

func TestProfileEntraRefusesResourceAndScopelessRefreshButSignsInWithDefaultScope(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileEntra, Resource: benchResource})
	client := as.Clients[0]
	org := as.AdvertisedIssuer // the endpoints of the "organizations" metadata
	scope := as.AppScope + " offline_access"

	t.Run("resource on the authorization request comes back as AADSTS9010010 without iss", func(t *testing.T) {
		q, _ := authRequest(client.ID, "http://localhost:9/callback", scope, url.Values{"resource": {benchResource}})
		cb := authorize(t, org+"/auth", q)
		if cb.Get("error") != "invalid_target" || !strings.HasPrefix(cb.Get("error_description"), "AADSTS9010010: ") ||
			cb.Get("state") != q.Get("state") || cb.Has("iss") {
			t.Errorf("callback = %v", cb)
		}
	})

	// A "mobile and desktop" redirect on http://localhost accepts any port.
	redirect := "http://localhost:" + portString(t) + "/callback"
	q, verifier := authRequest(client.ID, redirect, scope, nil)
	cb := authorize(t, org+"/auth", q)
	if cb.Get("code") == "" || cb.Get("state") != q.Get("state") || cb.Has("iss") {
		t.Fatalf("callback = %v, want a code and no iss", cb)
	}
	code := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")}, "code_verifier": {verifier},
		"redirect_uri": {redirect}, "client_id": {client.ID}}

	t.Run("resource on the token request is refused", func(t *testing.T) {
		form := cloneValues(code)
		form.Set("resource", benchResource)
		status, _, body := postToken(t, org+"/token", form, nil)
		if status != 400 || body["error"] != "invalid_target" || !strings.HasPrefix(str(body["error_description"]), "AADSTS9010010: ") {
			t.Errorf("token with resource: %d %v", status, redact(body))
		}
	})

	status, _, tok := postToken(t, org+"/token", code, nil)
	if status != 200 || tok["refresh_token"] == nil || tok["ext_expires_in"] == nil {
		t.Fatalf("code exchange: %d %v", status, redact(tok))
	}
	claims := verifyJWT(t, as, str(tok["access_token"])) // iss is the tenant issuer
	if aud, _ := claims.GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) ||
		claims["tid"] != as.TenantID || claims["scp"] != "mcp:read mcp:write mcp:admin" || claims["scope"] != claims["scp"] {
		t.Errorf("claims = %v", claims)
	}
	rt := str(tok["refresh_token"])

	t.Run("a refresh without scope is AADSTS90014", func(t *testing.T) {
		status, _, body := postToken(t, as.TokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {client.ID}}, nil)
		if status != 400 || body["error"] != "invalid_request" || !strings.HasPrefix(str(body["error_description"]), "AADSTS90014: ") ||
			!slices.Equal(body["error_codes"].([]any), []any{90014.0}) {
			t.Errorf("refresh without scope: %d %v", status, redact(body))
		}
	})
	t.Run("a dead refresh token is AADSTS700082", func(t *testing.T) {
		status, _, body := postToken(t, as.TokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"no-such-token"},
			"client_id": {client.ID}, "scope": {scope}}, nil)
		if status != 400 || body["error"] != "invalid_grant" || !strings.HasPrefix(str(body["error_description"]), "AADSTS700082: ") {
			t.Errorf("dead refresh token: %d %v", status, redact(body))
		}
	})
	t.Run("a refresh with scope renews the refresh token and the old one stays valid", func(t *testing.T) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {client.ID}, "scope": {scope}}
		status, _, fresh := postToken(t, as.TokenURL, form, nil)
		if status != 200 || fresh["refresh_token"] == nil || fresh["refresh_token"] == rt {
			t.Fatalf("refresh: %d %v", status, redact(fresh))
		}
		if aud, _ := verifyJWT(t, as, str(fresh["access_token"])).GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) {
			t.Errorf("refreshed aud = %v", aud)
		}
		if status, _, again := postToken(t, as.TokenURL, form, nil); status != 200 {
			t.Errorf("the used refresh token: %d %v, want still valid", status, redact(again))
		}
		if events := strings.Join(as.Events(t), "\n"); strings.Contains(events, "reused") {
			t.Errorf("reuse detected:\n%s", events)
		}
	})
	t.Run("without offline_access there is no refresh token", func(t *testing.T) {
		q, verifier := authRequest(client.ID, "http://127.0.0.1:9/callback", as.AppScope, nil)
		cb := authorize(t, as.AuthURL, q)
		status, _, tok := postToken(t, as.TokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")},
			"code_verifier": {verifier}, "redirect_uri": {"http://127.0.0.1:9/callback"}, "client_id": {client.ID}}, nil)
		if status != 200 || tok["access_token"] == nil || tok["refresh_token"] != nil {
			t.Errorf("code exchange: %d %v", status, redact(tok))
		}
	})
}

func TestProfileEntraAppOnlyTokenFollowsSetResourceAcrossRestart(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileEntra, StaticClients: []StaticClient{
		{ID: "daemon", JWKS: PublicJWKS(t, "k1", &key.PublicKey), GrantTypes: []string{GrantClientCredentials}},
	}})
	const other = "http://127.0.0.1:9/other"
	as.SetResource(t, other)
	as.Restart(t)
	form := clientAssertion(t, "daemon", "k1", key, as.TokenURL)
	form.Set("grant_type", "client_credentials")
	form.Set("scope", as.AppScope)
	status, _, tok := postToken(t, as.TokenURL, form, nil)
	if status != 200 {
		t.Fatalf("client_credentials: %d %v", status, redact(tok))
	}
	if claims := verifyJWT(t, as, str(tok["access_token"])); claims["sub"] != "daemon" || claims["tid"] != as.TenantID {
		t.Errorf("claims = %v", claims)
	} else if aud, _ := claims.GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{other}) {
		t.Errorf("aud = %v, want the resource set before Restart", aud)
	}
}

func TestProfileAtlassianAdvertisedIssuerServesMetadataNamingAnotherIssuer(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileAtlassian})
	if as.AdvertisedIssuer != as.ListenURL || as.Issuer != as.ListenURL+"/atl" {
		t.Fatalf("issuers %s, advertised %s", as.Issuer, as.AdvertisedIssuer)
	}
	for _, wk := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		var meta map[string]any
		if status := getJSON(t, as.AdvertisedIssuer+wk, &meta); status != 200 || meta["issuer"] != as.Issuer ||
			meta["registration_endpoint"] != as.RegistrationURL || meta["authorization_endpoint"] != as.AuthURL {
			t.Errorf("GET %s: %d %v", wk, status, meta)
		}
	}

	client := register(t, as, nativeClient())
	tok, q := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
	if q.Get("iss") != as.Issuer {
		t.Errorf("callback iss = %q, want the metadata's issuer %q", q.Get("iss"), as.Issuer)
	}
	fresh := refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t)
	if fresh.RefreshToken == tok.RefreshToken {
		t.Fatal("the refresh token did not rotate")
	}
	for _, rt := range []string{tok.RefreshToken, fresh.RefreshToken} { // reuse kills the grant
		status, _, body := postToken(t, as.TokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
			"client_id": {client.ID}}, nil)
		if status != 403 || body["error"] != "invalid_grant" || body["error_description"] != "Unknown or invalid refresh token." {
			t.Errorf("dead refresh token: %d %v, want Atlassian's 403 invalid_grant", status, redact(body))
		}
	}
	if !slices.Contains(as.Events(t), "refresh_token.reused client="+client.ID) {
		t.Errorf("events = %v", as.Events(t))
	}
}

func TestProfileSlackAnswersTokenErrorsWithStatus200(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileSlack})
	var meta map[string]any
	if status := getJSON(t, as.AdvertisedIssuer+"/.well-known/oauth-authorization-server", &meta); status != 200 ||
		meta["issuer"] != as.Issuer || as.Issuer == as.AdvertisedIssuer || meta["registration_endpoint"] != nil ||
		meta["revocation_endpoint"] != nil {
		t.Fatalf("metadata at the advertised issuer: %d %v", status, meta)
	}
	c := as.Clients[0]
	client := benchClient{ID: c.ID, Secret: c.Secret, AuthMethod: c.AuthMethod}
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)

	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ID}, "client_secret": {c.Secret}}
	if status, _, body := postToken(t, as.TokenURL, form, nil); status != 200 || body["ok"] != true || body["access_token"] == nil {
		t.Errorf("refresh: %d %v", status, redact(body))
	}
	form.Set("refresh_token", "no-such-token")
	if status, _, body := postToken(t, as.TokenURL, form, nil); status != 200 || body["ok"] != false || body["error"] != "invalid_grant" {
		t.Errorf("bad refresh token: %d %v, want 200 with ok=false", status, redact(body))
	}
	form.Set("client_secret", "wrong")
	if status, _, body := postToken(t, as.TokenURL, form, nil); status != 200 || body["error"] != "invalid_client" {
		t.Errorf("bad secret: %d %v, want 200 with invalid_client", status, redact(body))
	}
}

func TestProfileGitHubIssuesNonExpiringOpaqueTokensWithCommaScopes(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileGitHub, Resource: benchResource})
	pathInserted := as.ListenURL + "/.well-known/oauth-authorization-server/login/oauth"
	var meta map[string]any
	if status := getJSON(t, pathInserted, &meta); status != 200 || meta["issuer"] != as.Issuer ||
		!slices.Equal(meta["token_endpoint_auth_methods_supported"].([]any), []any{"client_secret_post"}) ||
		meta["registration_endpoint"] != nil || meta["revocation_endpoint"] != nil {
		t.Fatalf("GET %s: %d %v", pathInserted, status, meta)
	}
	for _, loc := range []string{as.Issuer + "/.well-known/openid-configuration", as.Issuer + "/.well-known/oauth-authorization-server",
		as.ListenURL + "/.well-known/openid-configuration/login/oauth"} {
		if status := getJSON(t, loc, nil); status != 404 {
			t.Errorf("GET %s: %d, want 404 (GitHub serves only the path-inserted form)", loc, status)
		}
	}

	c := as.Clients[0]
	const redirect = "http://127.0.0.1:9/callback"
	q, verifier := authRequest(c.ID, redirect, "mcp:read mcp:write", nil)
	cb := authorize(t, as.AuthURL, q)
	code := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")}, "code_verifier": {verifier},
		"redirect_uri": {redirect}, "client_id": {c.ID}, "client_secret": {c.Secret}}

	t.Run("client_secret_basic is refused with 200", func(t *testing.T) {
		form := cloneValues(code)
		form.Del("client_secret")
		status, _, body := postToken(t, as.TokenURL, form, func(r *http.Request) { r.SetBasicAuth(c.ID, c.Secret) })
		if status != 200 || body["error"] != "incorrect_client_credentials" {
			t.Errorf("Basic: %d %v", status, redact(body))
		}
	})
	status, _, tok := postToken(t, as.TokenURL, code, nil)
	if status != 200 || tok["scope"] != "mcp:read,mcp:write" || tok["token_type"] != "bearer" {
		t.Fatalf("code exchange: %d %v", status, redact(tok))
	}
	for _, k := range []string{"expires_in", "refresh_token"} {
		if _, ok := tok[k]; ok {
			t.Errorf("the token answer has %s", k)
		}
	}
	at := str(tok["access_token"])
	if strings.Count(at, ".") == 2 {
		t.Error("the access token is a JWT")
	}
	in := introspect(t, as, at)
	if exp, _ := in["exp"].(float64); in["active"] != true || in["aud"] != benchResource ||
		time.Unix(int64(exp), 0).Before(time.Now().Add(5*365*24*time.Hour)) {
		t.Errorf("introspection = %v, want active for years and bound to %s", in, benchResource)
	}
	t.Run("a spent code is bad_verification_code with 200, form-encoded without Accept json", func(t *testing.T) {
		status, h, raw := postTokenRaw(t, as.TokenURL, code, nil, "")
		form, err := url.ParseQuery(raw)
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/x-www-form-urlencoded") || err != nil ||
			form.Get("error") != "bad_verification_code" {
			t.Errorf("spent code: %d %s %q", status, h.Get("Content-Type"), raw)
		}
	})
}

func TestProfileAuth0AudienceDecidesTheTokenAndResourceIsIgnored(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileAuth0})
	client := register(t, as, nativeClient())
	const redirect = "http://127.0.0.1:9/callback"
	signIn := func(t *testing.T, extra url.Values) (map[string]any, url.Values) {
		t.Helper()
		q, verifier := authRequest(client.ID, redirect, "openid mcp:read", extra)
		cb := authorize(t, as.AuthURL, q)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")}, "code_verifier": {verifier},
			"redirect_uri": {redirect}, "client_id": {client.ID}}
		for k, v := range extra {
			form[k] = v
		}
		status, _, tok := postToken(t, as.TokenURL, form, nil)
		if status != 200 {
			t.Fatalf("code exchange: %d %v", status, redact(tok))
		}
		return tok, form
	}
	t.Run("resource alone gets a token for no API", func(t *testing.T) {
		tok, _ := signIn(t, url.Values{"resource": {benchResource}})
		at := str(tok["access_token"])
		if strings.Count(at, ".") == 2 {
			t.Fatal("a JWT without audience")
		}
		if in := introspect(t, as, at); in["active"] != true || in["aud"] != nil {
			t.Errorf("introspection = %v, want no audience", in)
		}
	})
	t.Run("audience gets a JWT for it, on refresh too", func(t *testing.T) {
		tok, form := signIn(t, url.Values{"audience": {benchResource}, "resource": {"http://127.0.0.1:9/ignored"}})
		if aud, _ := verifyJWT(t, as, str(tok["access_token"])).GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) {
			t.Errorf("aud = %v", aud)
		}
		status, _, fresh := postToken(t, as.TokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {client.ID},
			"refresh_token": {str(tok["refresh_token"])}, "audience": form["audience"]}, nil)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, redact(fresh))
		}
		if aud, _ := verifyJWT(t, as, str(fresh["access_token"])).GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) {
			t.Errorf("refreshed aud = %v", aud)
		}
	})
}

func TestProfileLegacyServesDefaultPathsUnderAFrontsIssuer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := "http://" + l.Addr().String()
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileLegacy, IssuerOrigin: front})
	srv := &http.Server{Handler: as.ReverseProxy()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	if as.Issuer != front || as.ListenURL == front || as.AuthURL != front+"/authorize" ||
		as.RegistrationURL != front+"/register" || as.TokenURL != front+"/token" {
		t.Fatalf("AuthServer = %+v", as)
	}
	for _, base := range []string{front, as.ListenURL} { // the server names the front even when asked directly
		var meta map[string]any
		if status := getJSON(t, base+"/.well-known/oauth-authorization-server", &meta); status != 200 || meta["issuer"] != front ||
			meta["authorization_endpoint"] != as.AuthURL || meta["registration_endpoint"] != as.RegistrationURL {
			t.Errorf("metadata at %s: %d %v", base, status, meta)
		}
	}
	client := register(t, as, nativeClient())
	tok, q := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
	if q.Get("iss") != front {
		t.Errorf("callback iss = %q", q.Get("iss"))
	}
	verifyJWT(t, as, tok.AccessToken)
	as.Revoke(t, tok.RefreshToken)
	if s := as.Stats(t); s.Requests["authorization"] != 1 || s.Requests["registration"] != 1 {
		t.Errorf("requests = %v", s.Requests)
	}
}

func TestCIMDClientIDURLIsFetchedOverHTTPSAndSignsIn(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Profile: ProfileCIMD})
	var meta map[string]any
	if getJSON(t, as.Issuer+"/.well-known/oauth-authorization-server", &meta); meta["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata = %v", meta)
	}
	doc := []byte(`{"client_name":"authkeeper","application_type":"native","redirect_uris":["http://127.0.0.1/callback"],
		"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`)
	id := as.PublishClientMetadata(t, doc)
	if !strings.HasPrefix(id, "https://127.0.0.1:") {
		t.Fatalf("client id %q", id)
	}
	client := benchClient{ID: id, AuthMethod: "none"}
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
	if claims := verifyJWT(t, as, tok.AccessToken); claims["client_id"] != id {
		t.Errorf("client_id claim = %v", claims["client_id"])
	}
	refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t)
	if n := as.ClientMetadataRequests(); n < 1 {
		t.Errorf("the document was fetched %d times", n)
	}

	t.Run("a document naming another client_id is refused", func(t *testing.T) {
		var m map[string]any
		json.Unmarshal(doc, &m)
		m["client_id"] = "https://127.0.0.1:1/elsewhere.json"
		other, _ := json.Marshal(m)
		bad := as.PublishClientMetadata(t, other)
		q, _ := authRequest(bad, "http://127.0.0.1:9/callback", "mcp:read", nil)
		b := NewBrowser(t, BrowserOptions{NoDeliver: true})
		if err := b.Open(as.AuthURL + "?" + q.Encode()); err != nil {
			t.Fatal(err)
		}
		if v, err := b.Wait(t.Context()); err == nil || v.Callback != "" {
			t.Errorf("Wait = %+v, %v; want the server's error page", v, err)
		}
	})
}

func TestProfileDefaultClientCredentialsWithSecretOrPrivateKeyJWTAreAudienceBound(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	as := NewAuthServer(t, AuthServerOptions{StaticClients: []StaticClient{
		{ID: "svc-secret", Secret: "s3cret-s3cret"},
		{ID: "svc-jwt", JWKS: PublicJWKS(t, "k1", &key.PublicKey)},
	}})
	if as.Clients[0].AuthMethod != AuthClientSecretBasic || as.Clients[1].AuthMethod != AuthPrivateKeyJWT ||
		!slices.Equal(as.Clients[1].GrantTypes, []string{GrantClientCredentials}) {
		t.Fatalf("Clients = %+v", as.Clients)
	}
	wrongKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name  string
		form  url.Values
		basic bool
		ok    bool
	}{
		{"client_secret_basic", url.Values{}, true, true},
		{"private_key_jwt", clientAssertion(t, "svc-jwt", "k1", key, as.TokenURL), false, true},
		{"private_key_jwt with another key", clientAssertion(t, "svc-jwt", "k1", wrongKey, as.TokenURL), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := tc.form
			form.Set("grant_type", "client_credentials")
			form.Set("scope", "mcp:read")
			form.Set("resource", benchResource)
			var auth func(*http.Request)
			if tc.basic {
				auth = func(r *http.Request) { r.SetBasicAuth("svc-secret", "s3cret-s3cret") }
			}
			status, _, tok := postToken(t, as.TokenURL, form, auth)
			if !tc.ok {
				if status != 401 || tok["error"] != "invalid_client" {
					t.Errorf("%d %v, want invalid_client", status, redact(tok))
				}
				return
			}
			if status != 200 || tok["refresh_token"] != nil {
				t.Fatalf("%d %v", status, redact(tok))
			}
			claims := verifyJWT(t, as, str(tok["access_token"]))
			if aud, _ := claims.GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) || claims["scope"] != "mcp:read" {
				t.Errorf("claims = %v", claims)
			}
		})
	}
}

func TestProfileHooksWorkUnderEveryProfile(t *testing.T) {
	for _, p := range profiles {
		t.Run(cmp.Or(string(p), "default"), func(t *testing.T) {
			as := NewAuthServer(t, AuthServerOptions{Profile: p})
			tokenURLs := []string{as.TokenURL}
			if p == ProfileEntra {
				tokenURLs = append(tokenURLs, as.AdvertisedIssuer+"/token")
			}
			as.Fault(t, Fault{Endpoint: "token", Status: 503, Count: len(tokenURLs)})
			for _, u := range tokenURLs {
				if status, _, _ := postToken(t, u, url.Values{"grant_type": {"client_credentials"}}, nil); status != 503 {
					t.Errorf("faulted %s: %d", u, status)
				}
			}
			if s := as.Stats(t); s.Requests["token"] != len(tokenURLs) || s.TokenRequests["client_credentials"] != len(tokenURLs) {
				t.Errorf("stats = %+v", s)
			}
			as.Stop(t)
			if _, err := http.Get(as.ListenURL + "/__testbed/stats"); err == nil {
				t.Fatal("the stopped server answered")
			}
			as.Start(t)
			if status := getJSON(t, as.JWKSURL, nil); status != 200 {
				t.Errorf("JWKS after Start: %d", status)
			}
		})
	}
}
