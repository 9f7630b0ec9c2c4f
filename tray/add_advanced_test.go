//go:build !headless

package tray

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"github.com/google/go-cmp/cmp"
)

func TestParseParamsReadsPairsAndRefusesWhatAuthkeeperSets(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
		wantErr    string
	}{
		{name: "empty", text: "  "},
		{name: "one", text: "audience=https://api.example.com", want: map[string]string{"audience": "https://api.example.com"}},
		{name: "separators", text: "audience=a, prompt=consent\norganization=o", want: map[string]string{"audience": "a", "prompt": "consent", "organization": "o"}},
		{name: "empty value", text: "audience=", want: map[string]string{"audience": ""}},
		{name: "no equals", text: "audience", wantErr: "must look like name=value"},
		{name: "no name", text: "=x", wantErr: "must look like name=value"},
		{name: "reserved", text: "redirect_uri=http://evil.example", wantErr: "set by authkeeper itself"},
		{name: "reserved pkce", text: "code_challenge_method=plain", wantErr: "set by authkeeper itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseParams(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAddWindowAdvancedSettingsAreKeptWithTheServer signs in with extra scopes and an extra parameter
// from the Advanced part, against the real bench AS, and checks the engine saved them with the server
// (so every later sign-in sends them again) and that the sign-in URL was offered for pasting.
func TestAddWindowAdvancedSettingsAreKeptWithTheServer(t *testing.T) {
	b := newBench(t, nil)
	w, steps := newTestAddWindow(t, b)
	w.url.SetText(b.srv.URL)
	steps.wait(t, "probed "+b.srv.URL+" shown")
	w.name.SetText("bench")
	w.adv.scopes.SetText("mcp:write, mcp:admin")
	w.adv.params.SetText("audience=bench-api")

	test.Tap(w.signIn)
	steps.wait(t, "url")
	if !strings.Contains(w.status.Text, "If it did not open, open:\n"+b.as.AuthURL) {
		t.Errorf("status while signing in: %q", w.status.Text)
	}
	steps.wait(t, "added")
	if !strings.HasPrefix(w.status.Text, "Added bench.") {
		t.Fatalf("status: %q", w.status.Text)
	}
	srv, err := b.eng.Server("bench")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mcp:write", "mcp:admin"}, srv.Scopes); diff != "" {
		t.Errorf("saved scopes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"audience": "bench-api"}, srv.Params); diff != "" {
		t.Errorf("saved params (-want +got):\n%s", diff)
	}
	if got := b.browser.Opened(); len(got) != 1 || !strings.Contains(got[0], "audience=bench-api") || !strings.Contains(got[0], "mcp%3Awrite") {
		t.Errorf("the authorization request does not carry the extra scope and parameter: %q", got)
	}
}

// TestAddWindowRefusesAReservedParameterAndSavesNothing: a parameter authkeeper sets itself is refused
// before anything is sent.
func TestAddWindowRefusesAReservedParameterAndSavesNothing(t *testing.T) {
	b := newBench(t, nil)
	w, steps := newTestAddWindow(t, b)
	w.url.SetText(b.srv.URL)
	steps.wait(t, "probed "+b.srv.URL+" shown")
	w.adv.params.SetText("state=fixed")
	test.Tap(w.signIn)
	if !strings.Contains(w.status.Text, `"state" is set by authkeeper itself`) {
		t.Errorf("status: %q", w.status.Text)
	}
	if got := b.browser.Opened(); len(got) != 0 {
		t.Errorf("the browser was opened: %q", got)
	}
}
