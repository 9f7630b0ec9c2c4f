package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdCluster is a cluster of real etcd members (Debian's /usr/bin/etcd, 3.4) on loopback, bootstrapped
// statically, each with its own client and peer port and data directory, with election settings fast
// enough for tests (50 ms heartbeat, 500 ms election timeout). Its members are stopped by t.Cleanup,
// and every member's output is logged if the test failed. Safe for concurrent use; the methods that
// start or fail must be called from the test's goroutine (they may call t.Fatal).
type EtcdCluster struct {
	// CAFile, ClientCertFile and ClientKeyFile are set under EtcdOptions.TLS: the PEM files of the CA
	// that signed the members' certificates and of a client certificate (CN "testbed-client") that
	// the members accept.
	CAFile, ClientCertFile, ClientKeyFile string

	t       testing.TB
	opts    EtcdOptions
	tls     *tls.Config // for the cluster's own clients (health, status), under EtcdOptions.TLS
	token   string      // --initial-cluster-token: unique, so members of two clusters never join up
	initial string      // --initial-cluster
	members []*EtcdMember

	serverCert, serverKey string // the members' certificate for 127.0.0.1, under EtcdOptions.TLS
}

// EtcdOptions configures StartEtcdClusterWith.
type EtcdOptions struct {
	// TLS serves clients over TLS only (https:// client URLs), with a certificate for 127.0.0.1 from a
	// fresh CA, and requires a client certificate from that CA (--client-cert-auth). Peers stay
	// plaintext. Default: plaintext.
	TLS bool
}

// EtcdMember is one member of an EtcdCluster. Safe for concurrent use.
type EtcdMember struct {
	c       *EtcdCluster
	name    string
	client  string // http://127.0.0.1:PORT
	peer    string // http://127.0.0.1:PORT
	dataDir string

	mu      sync.Mutex
	proc    *Process // the running (or last) etcd process
	runs    int      // how often it was started: the first run bootstraps the cluster
	stopped bool     // stopped by Stop or Kill (not crashed) since the last Start
}

// etcdStartAttempts bounds how often StartEtcdCluster picks new ports after a member failed to start: a
// port FreePort found free may be taken by another test's server before etcd binds it.
const etcdStartAttempts = 3

// etcdHealthyWithin bounds how long a fresh cluster may take to elect a leader and answer.
const etcdHealthyWithin = 20 * time.Second

// StartEtcdCluster starts n etcd members on loopback and returns once every member answers and the
// cluster has a leader that serves a linearizable read. Linux only (the test is skipped elsewhere);
// etcd missing fails the test under CI and skips it otherwise.
func StartEtcdCluster(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	return StartEtcdClusterWith(t, n, EtcdOptions{})
}

// StartEtcdClusterWith is StartEtcdCluster with options.
func StartEtcdClusterWith(t testing.TB, n int, opts EtcdOptions) *EtcdCluster {
	t.Helper()
	linuxOnly(t, "an etcd cluster (Debian's etcd-server)")
	Need(t, "etcd")
	if n < 1 {
		t.Fatalf("etcd cluster: %d members", n)
	}
	var lastErr error
	for attempt := 1; attempt <= etcdStartAttempts; attempt++ {
		c := newEtcdCluster(t, n, opts)
		for _, m := range c.members {
			m.Start()
		}
		ctx, cancel := context.WithTimeout(context.Background(), etcdHealthyWithin)
		lastErr = c.WaitHealthy(ctx)
		cancel()
		if lastErr == nil {
			return c
		}
		for _, m := range c.members {
			m.Kill()
		}
		t.Logf("etcd cluster, attempt %d: %v", attempt, lastErr)
	}
	t.Fatalf("etcd cluster of %d did not become healthy after %d attempts: %v", n, etcdStartAttempts, lastErr)
	return nil
}

// newEtcdCluster picks ports, names and data directories for n members.
func newEtcdCluster(t testing.TB, n int, opts EtcdOptions) *EtcdCluster {
	t.Helper()
	token := make([]byte, 6)
	_, _ = rand.Read(token)
	c := &EtcdCluster{t: t, opts: opts, token: "testbed-" + hex.EncodeToString(token)}
	var initial []string
	root := t.TempDir()
	scheme := "http"
	if opts.TLS {
		scheme = "https"
		c.makeCerts(root)
	}
	for i := range n {
		m := &EtcdMember{
			c:       c,
			name:    fmt.Sprintf("m%d", i),
			client:  fmt.Sprintf("%s://127.0.0.1:%d", scheme, FreePort(t)),
			peer:    fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
			dataDir: filepath.Join(root, fmt.Sprintf("m%d", i)),
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	c.initial = strings.Join(initial, ",")
	return c
}

// Endpoints returns every member's client URL, running or not, in member order.
func (c *EtcdCluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.client
	}
	return eps
}

// Member returns the i-th member (0-based).
func (c *EtcdCluster) Member(i int) *EtcdMember { return c.members[i] }

// Len is the number of members.
func (c *EtcdCluster) Len() int { return len(c.members) }

// ClientURL is the member's client URL, http://127.0.0.1:PORT.
func (m *EtcdMember) ClientURL() string { return m.client }

// DataDir is the member's data directory; it survives Stop and Kill, so Start resumes from it.
func (m *EtcdMember) DataDir() string { return m.dataDir }

// Name is the member's etcd name (m0, m1, ...).
func (m *EtcdMember) Name() string { return m.name }

// Start starts the member's etcd process if it is not running: the first time as part of the new
// cluster, later from its data directory as a member of the existing one. It does not wait for the
// member to answer; see EtcdCluster.WaitHealthy.
func (m *EtcdMember) Start() {
	m.c.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		select {
		case <-m.proc.Done():
		default:
			return // running
		}
	}
	state := "new"
	if m.runs > 0 {
		state = "existing"
	}
	m.runs++
	m.stopped = false
	cmd := exec.Command("etcd",
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", m.c.initial,
		"--initial-cluster-token", m.c.token,
		"--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--logger", "zap", "--log-outputs", "stderr",
	)
	if m.c.opts.TLS {
		cmd.Args = append(cmd.Args, "--cert-file", m.c.serverCert, "--key-file", m.c.serverKey,
			"--client-cert-auth", "--trusted-ca-file", m.c.CAFile)
	}
	m.proc = StartProcess(m.c.t, fmt.Sprintf("etcd %s (run %d)", m.name, m.runs), cmd)
}

// Stop stops the member with SIGTERM (etcd leaves the cluster's leadership gracefully) and waits for
// it to exit (killing it after five seconds).
func (m *EtcdMember) Stop() {
	if p := m.markStopped(); p != nil {
		_ = p.Stop()
	}
}

// Kill stops the member with SIGKILL and waits for it to exit.
func (m *EtcdMember) Kill() {
	if p := m.markStopped(); p != nil {
		p.Kill()
	}
}

// Running reports whether the member's process is running.
func (m *EtcdMember) Running() bool {
	p := m.process()
	if p == nil {
		return false
	}
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

func (m *EtcdMember) process() *Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// markStopped records that the member is being stopped on purpose and returns its process.
func (m *EtcdMember) markStopped() *Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	return m.proc
}

// crashed returns an error when the member's process exited without Stop or Kill.
func (m *EtcdMember) crashed() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil || m.stopped {
		return nil
	}
	select {
	case <-m.proc.Done():
		out := m.proc.Output()
		if len(out) > 2000 {
			out = "…" + out[len(out)-2000:]
		}
		return fmt.Errorf("etcd %s exited (%v):\n%s", m.name, m.proc.ExitErr(), out)
	default:
		return nil
	}
}

// Client returns a client of the whole cluster (with the client certificate under EtcdOptions.TLS),
// closed in cleanup.
func (c *EtcdCluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := c.client(c.Endpoints()...)
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// client connects to the given endpoints with a silent logger (and the cluster's client certificate
// under EtcdOptions.TLS). The caller closes it.
func (c *EtcdCluster) client(endpoints ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, TLS: c.tls, Logger: zap.NewNop()})
}

// WaitHealthy waits until every running member answers, all of them name the same leader, and a
// linearizable read through them succeeds (so it cannot tell once etcd's authentication is enabled:
// the read is refused); it returns an error naming what was last missing when ctx
// ends first, or at once when a member exited without Stop or Kill.
func (c *EtcdCluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		for _, m := range c.members {
			if err := m.crashed(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd cluster not healthy: %w", last)
		case <-time.After(50 * time.Millisecond): // polling other processes' state
		}
	}
}

// healthy checks the cluster once.
func (c *EtcdCluster) healthy(ctx context.Context) error {
	var running []string
	for _, m := range c.members {
		if m.Running() {
			running = append(running, m.client)
		}
	}
	if len(running) == 0 {
		return errors.New("no member is running")
	}
	leader, _, err := c.statuses(ctx, running)
	if err != nil {
		return err
	}
	if leader == 0 {
		return errors.New("no leader")
	}
	cli, err := c.client(running...)
	if err != nil {
		return err
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), time.Second)
	defer cancel()
	if _, err := cli.Get(rctx, "testbed-health"); err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	return nil
}

// statuses asks each endpoint for its status and returns the leader's member ID they agree on (0 when
// some member has none or they disagree) and every answering member's ID by endpoint.
func (c *EtcdCluster) statuses(ctx context.Context, endpoints []string) (leader uint64, ids map[string]uint64, err error) {
	ids = map[string]uint64{}
	for i, ep := range endpoints {
		cli, err := c.client(ep)
		if err != nil {
			return 0, nil, err
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, ep)
		cancel()
		cli.Close()
		if err != nil {
			return 0, nil, fmt.Errorf("status of %s: %w", ep, err)
		}
		ids[ep] = st.Header.MemberId
		switch {
		case st.Leader == 0:
			return 0, ids, nil
		case i == 0:
			leader = st.Leader
		case st.Leader != leader:
			return 0, ids, nil
		}
	}
	return leader, ids, nil
}

// Leader returns the index of the member the running members agree is the raft leader.
func (c *EtcdCluster) Leader(ctx context.Context) (int, error) {
	var running []string
	for _, m := range c.members {
		if m.Running() {
			running = append(running, m.client)
		}
	}
	leader, ids, err := c.statuses(ctx, running)
	if err != nil {
		return -1, err
	}
	if leader == 0 {
		return -1, errors.New("etcd cluster: the running members name no common leader")
	}
	for i, m := range c.members {
		if id, ok := ids[m.client]; ok && id == leader {
			return i, nil
		}
	}
	return -1, fmt.Errorf("etcd cluster: leader %x is not a running member", leader)
}

// ScanDataDirs returns the files under the members' data directories (relative to their common
// parent, e.g. m0/member/wal/0000000000000000-0000000000000000.wal) whose bytes contain needle. etcd
// keeps values verbatim in both its write-ahead log and its bbolt database, so a value written through
// the cluster is found once it is committed.
func (c *EtcdCluster) ScanDataDirs(needle []byte) []string {
	c.t.Helper()
	if len(needle) == 0 {
		c.t.Fatalf("ScanDataDirs: empty needle")
	}
	var found []string
	for _, m := range c.members {
		root := filepath.Dir(m.dataDir)
		err := filepath.WalkDir(m.dataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed meanwhile (etcd renames and purges files)
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			hit, err := fileContains(path, needle)
			if err != nil {
				return err
			}
			if hit {
				rel, _ := filepath.Rel(root, path)
				found = append(found, rel)
			}
			return nil
		})
		if err != nil {
			c.t.Fatalf("ScanDataDirs %s: %v", m.dataDir, err)
		}
	}
	return found
}

// fileContains streams the file at path, a chunk at a time with an overlap of len(needle)-1 bytes, and
// reports whether needle occurs in it. WAL files are 64 MB (preallocated), so none is read whole.
func fileContains(path string, needle []byte) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20+len(needle))
	keep := 0
	for {
		n, err := io.ReadFull(f, buf[keep:])
		if bytes.Contains(buf[:keep+n], needle) {
			return true, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		keep = min(len(needle)-1, keep+n)
		copy(buf, buf[len(buf)-keep:])
	}
}

// StoreURL is authkeeper's store URL for the cluster's plaintext members under prefix (which starts
// with '/'): etcd://host:port,host:port,…/prefix.
func (c *EtcdCluster) StoreURL(prefix string) string {
	hosts := make([]string, 0, len(c.members))
	for _, ep := range c.Endpoints() {
		hosts = append(hosts, strings.TrimPrefix(ep, "http://"))
	}
	return "etcd://" + strings.Join(hosts, ",") + prefix
}
