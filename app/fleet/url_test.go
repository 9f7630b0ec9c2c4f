package fleet

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseURL(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openPW := filepath.Join(dir, "open-pw")
	if err := os.WriteFile(openPW, []byte("s3cret-pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type want struct {
		Endpoints []string
		Prefix    string
		TLS       bool
		Username  string
		Password  string
	}
	tests := []struct {
		name, url string
		want      want
		err       string // substring of the error; "" for none
	}{
		{"one host, default prefix", "etcd://10.0.0.1:2379",
			want{Endpoints: []string{"http://10.0.0.1:2379"}, Prefix: "/authkeeper"}, ""},
		{"several hosts and a prefix", "etcd://a:1,b:2,c/team/one/",
			want{Endpoints: []string{"http://a:1", "http://b:2", "http://c:2379"}, Prefix: "/team/one"}, ""},
		{"IPv6", "etcd://[::1]:23790,[fe80::1]",
			want{Endpoints: []string{"http://[::1]:23790", "http://[fe80::1]:2379"}, Prefix: "/authkeeper"}, ""},
		{"TLS with system roots", "etcds://e1:2379/p",
			want{Endpoints: []string{"https://e1:2379"}, Prefix: "/p", TLS: true}, ""},
		{"etcd auth", "etcd://e1:2379?user=ak&password-file=" + pw,
			want{Endpoints: []string{"http://e1:2379"}, Prefix: "/authkeeper", Username: "ak", Password: "s3cret-pw"}, ""},
		{"other scheme", "http://e1:2379", want{}, "want etcd://"},
		{"no scheme", "e1:2379", want{}, "want etcd://"},
		{"empty host", "etcd://a:1,,b:2", want{}, "empty host"},
		{"bad port", "etcd://a:99999", want{}, "bad port"},
		{"unknown option", "etcd://a:1?insecure=1", want{}, `unknown option "insecure"`},
		{"TLS files on plaintext", "etcd://a:1?cacert=/x", want{}, "use etcds://"},
		{"cert without key", "etcds://a:1?cert=/x", want{}, "cert and key go together"},
		{"user without password", "etcd://a:1?user=u", want{}, "user and password-file go together"},
		{"missing cacert", "etcds://a:1?cacert=" + filepath.Join(dir, "none.pem"), want{}, "cacert"},
		{"credentials in the host", "etcd://u:hunter2@a:1", want{}, "password-file"},
		{"empty prefix segment", "etcd://a:1/x//y", want{}, "empty segment"},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests, struct {
			name, url string
			want      want
			err       string
		}{"password file others can read", "etcd://a:1?user=u&password-file=" + openPW, want{}, "not private"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseURL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseURL(%q) error = %v; want one containing %q", tc.url, err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error shows a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.url, err)
			}
			got := want{cfg.Endpoints, cfg.Prefix, cfg.TLS != nil, cfg.Username, cfg.Password}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("ParseURL(%q) (-want +got):\n%s", tc.url, diff)
			}
		})
	}
}
