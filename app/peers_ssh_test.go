package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The headless use on a server: an agent on a remote box with no desktop reaches the laptop's proxy
// through `ssh -R <port>:127.0.0.1:<proxy port>`, so its requests arrive with the remote port in Host.
// Run for real: Debian's sshd on a free loopback port with a private config and keys, and the real ssh
// client asking it for the remote forward (the "remote box" is this machine).

// TestProxyServesAnAgentBehindAnSSHRemoteForward: through a real `ssh -R` forward, an MCP session
// (initialize, then tools/call) with the key in X-Authkeeper-Key reaches the server with a fresh token
// although Host names the forward's port, not the proxy's; a Host that is not loopback, or no key,
// is still refused through the forward without reaching the server.
func TestProxyServesAnAgentBehindAnSSHRemoteForward(t *testing.T) {
	b := newBench(t, benchOptions{})
	target := strings.TrimPrefix(b.eng.ProxyURL(), "http://")
	fwd := sshRemoteForward(t, target)
	if _, proxyPort, _ := net.SplitHostPort(target); proxyPort == strconv.Itoa(fwd) {
		t.Fatalf("the forward reuses the proxy's port %s: the test would not show a foreign port", proxyPort)
	}
	key := b.eng.ProxyKey()
	remote := fmt.Sprintf("http://127.0.0.1:%d/mcp/bench", fwd)

	t.Run("MCP session through the forward", func(t *testing.T) {
		before := b.srv.Stats(t)
		c := mcp.NewClient(&mcp.Implementation{Name: "remote-agent", Version: "1"}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: remote, HTTPClient: &http.Client{
			Transport: keyHeader{key: key, next: http.DefaultTransport},
		}}, nil)
		if err != nil {
			t.Fatalf("initialize through the forward: %v", err)
		}
		defer cs.Close()
		w, err := proxyWhoami(ctx, cs)
		if err != nil {
			t.Fatalf("tools/call through the forward: %v", err)
		}
		if w.Subject == "" || w.ExpiresAt <= time.Now().Unix() {
			t.Errorf("the server saw %+v, want a subject and an unexpired token", w)
		}
		after := b.srv.Stats(t)
		if after.Requests == before.Requests || after.Unauthorized != before.Unauthorized {
			t.Errorf("server requests %d→%d, 401s %d→%d: want requests that all carried a valid token",
				before.Requests, after.Requests, before.Unauthorized, after.Unauthorized)
		}
	})

	cases := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"127.0.0.1 and the forward's port as Host", http.Header{proxy.ProxyKeyHeader: {key}}, http.StatusOK},
		{"localhost and the forward's port as Host", http.Header{proxy.ProxyKeyHeader: {key}, "Host": {fmt.Sprintf("localhost:%d", fwd)}}, http.StatusOK},
		{"a foreign Host through the forward", http.Header{proxy.ProxyKeyHeader: {key}, "Host": {fmt.Sprintf("attacker.example:%d", fwd)}}, http.StatusForbidden},
		{"no key through the forward", nil, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := b.srv.Stats(t)
			status, _, body := proxyPost(t, remote, c.header, proxyInitBody)
			after := b.srv.Stats(t)
			if status != c.want {
				t.Fatalf("status %d, want %d; body %s", status, c.want, body)
			}
			if c.want == http.StatusForbidden && after.Requests != before.Requests {
				t.Errorf("a refused request reached the server")
			}
			if c.want == http.StatusOK && (after.Unauthorized != before.Unauthorized || !strings.Contains(body, `"id":7`)) {
				t.Errorf("the server did not accept the forwarded call (401s %d→%d): %s", before.Unauthorized, after.Unauthorized, body)
			}
		})
	}
}

// keyHeader sends the proxy's access key on every request, as an agent's MCP client configured with
// a header does.
type keyHeader struct {
	key  string
	next http.RoundTripper
}

func (k keyHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(proxy.ProxyKeyHeader, k.key)
	return k.next.RoundTrip(r)
}

// sshRemoteForward starts a private sshd on a free loopback port and a real ssh client that logs in
// to it with a generated key, checks its generated host key against a private known_hosts, and asks
// for a remote forward from a new loopback port to target (host:port). It returns that port once it
// accepts connections; both processes stop when the test ends.
//
// As root, sshd needs its privilege-separation directory /run/sshd (Debian's service creates it at
// start; it is created here if absent and removed again) and runs with UsePAM no. As another user
// sshd runs unprivileged and can only log that user in; it then runs with UsePAM yes, because its own
// locked-account check reads /etc/shadow, which it cannot, and so refuses every account.
func sshRemoteForward(t *testing.T, target string) int {
	t.Helper()
	sshd := "/usr/sbin/sshd" // not on PATH for most users
	if _, err := os.Stat(sshd); err != nil {
		testbed.Need(t, "sshd")
		sshd, _ = exec.LookPath("sshd")
	}
	testbed.Need(t, "ssh", "ssh-keygen")
	me, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	usePAM := "yes"
	if os.Geteuid() == 0 {
		usePAM = "no"
		privsepDir(t)
	}

	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	for _, k := range []string{"host_key", "client_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "authkeeper-test", "-f", file(k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %s: %v: %s", k, err, out)
		}
	}
	hostPub := readFile(t, file("host_key.pub"))
	writeFile(t, file("authorized_keys"), readFile(t, file("client_key.pub")))
	port := testbed.FreePort(t)
	// ssh names a non-default port's host [host]:port in known_hosts; the comment is dropped.
	writeFile(t, file("known_hosts"), fmt.Sprintf("[127.0.0.1]:%d %s\n", port, strings.Join(strings.Fields(hostPub)[:2], " ")))
	writeFile(t, file("sshd_config"), strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"Port " + strconv.Itoa(port),
		"HostKey " + file("host_key"),
		"AuthorizedKeysFile " + file("authorized_keys"),
		"PidFile none",
		"UsePAM " + usePAM,
		"StrictModes no", // the temporary directory's modes are the test runner's, not a home's
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding remote",
		"GatewayPorts no", // the forward listens on the remote box's loopback only, as by default
		"PrintMotd no",
		"",
	}, "\n"))
	d := testbed.StartProcess(t, "sshd", exec.Command(sshd, "-D", "-e", "-f", file("sshd_config")))
	waitListening(t, d, port)

	fwd := testbed.FreePort(t)
	c := testbed.StartProcess(t, "ssh -R", exec.Command("ssh", "-F", "none", "-N",
		"-i", file("client_key"), "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+file("known_hosts"), "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
		"-p", strconv.Itoa(port), "-R", fmt.Sprintf("127.0.0.1:%d:%s", fwd, target),
		me.Username+"@127.0.0.1"))
	waitListening(t, c, fwd)
	return fwd
}

// privsepDir makes sure root's sshd finds /run/sshd, removing it after the test if it was absent.
func privsepDir(t *testing.T) {
	t.Helper()
	const dir = "/run/sshd"
	err := os.Mkdir(dir, 0o755)
	switch {
	case errors.Is(err, fs.ErrExist):
	case err != nil:
		t.Fatalf("sshd's privilege-separation directory: %v", err)
	default:
		t.Cleanup(func() { os.Remove(dir) })
	}
}

// waitListening waits until 127.0.0.1:port accepts a connection, failing the test if p exits first.
// Polling: the only sign sshd and ssh give that a port is ready is the port itself.
func waitListening(t *testing.T, p *testbed.Process, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		select {
		case <-p.Done():
			t.Fatalf("exited (%v) before %s accepted connections:\n%s", p.ExitErr(), addr, p.Output())
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s accepted no connection within 15s:\n%s", addr, p.Output())
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
