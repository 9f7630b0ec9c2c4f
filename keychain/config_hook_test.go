package keychain

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
)

func TestConfigFileKeepsTheEventHook(t *testing.T) {
	c, err := NewConfigFile(testbed.TempDir(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSettings()
	want.Prefs.EventHook = &EventHook{
		Command: []string{"page-oncall", "--team", "platform"},
		URL:     "https://hooks.example/services/T0/B0/abc", HeadersFile: filepath.Join(testbed.TempDir(t), "hook-headers"),
		DegradedAfter: "15m",
	}
	if err := c.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-saved +loaded):\n%s", diff)
	}
}

func TestSettingsValidateRejectsABadEventHook(t *testing.T) {
	const secret = "s3cret-path"
	abs := filepath.Join(testbed.TempDir(t), "h") // absolute on every OS
	for _, tt := range []struct {
		name string
		hook EventHook
		want string // in the error
	}{
		{"neither command nor URL", EventHook{DegradedAfter: "5m"}, "set a command, a URL"},
		{"empty program", EventHook{Command: []string{"", "x"}}, "program"},
		{"relative URL", EventHook{URL: "/hook/" + secret}, "absolute http(s)"},
		{"ftp URL", EventHook{URL: "ftp://hooks.example/" + secret}, "absolute http(s)"},
		{"URL without host", EventHook{URL: "https:///" + secret}, "absolute http(s)"},
		{"relative headers file", EventHook{URL: "https://hooks.example/x", HeadersFile: "headers"}, "absolute path"},
		{"headers file without URL", EventHook{Command: []string{"true"}, HeadersFile: abs}, "goes with a URL"},
		{"degraded_after not a duration", EventHook{URL: "https://hooks.example/x", DegradedAfter: "10"}, "positive duration"},
		{"degraded_after zero", EventHook{URL: "https://hooks.example/x", DegradedAfter: "0s"}, "positive duration"},
		{"degraded_after negative", EventHook{URL: "https://hooks.example/x", DegradedAfter: "-1m"}, "positive duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			s.Prefs.EventHook = &tt.hook
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error about %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error repeats the URL, which may hold a webhook's secret: %v", err)
			}
		})
	}
	for _, ok := range []EventHook{
		{Command: []string{"notify-oncall"}},
		{URL: "http://127.0.0.1:9000/hook", DegradedAfter: "90s"},
		{URL: "https://hooks.example/x", HeadersFile: abs, Command: []string{"logger", "-t", "authkeeper"}},
	} {
		s := DefaultSettings()
		s.Prefs.EventHook = &ok
		if err := s.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
}
