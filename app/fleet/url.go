package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/authkeeper/authkeeper/keychain"
)

// DefaultPrefix is the key prefix when the store URL names none.
const DefaultPrefix = "/authkeeper"

// defaultPort is etcd's client port, used for a host given without one.
const defaultPort = "2379"

// ParseURL reads a store URL into the connection part of a Config (Endpoints, Prefix, TLS, Username,
// Password):
//
//	etcd://host:port[,host:port...][/prefix][?cacert=F&cert=F&key=F&user=U&password-file=F]
//
// etcd:// is plaintext; etcds:// is TLS, verified against the system roots or the PEM bundle cacert
// names; cert and key (together) present a client certificate. user and password-file (together) log
// in with etcd's own authentication; the password file must be private and holds the password on its
// first line. A host without a port gets etcd's 2379. The files are read now; errors never contain the
// password.
func ParseURL(raw string) (Config, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "etcd" && scheme != "etcds") {
		return Config{}, fmt.Errorf("fleet store %q: want etcd://host:port[,host:port...][/prefix] or etcds://…", redactURL(raw))
	}
	hostsEnd := strings.IndexAny(rest, "/?")
	if hostsEnd < 0 {
		hostsEnd = len(rest)
	}
	hosts, tail := rest[:hostsEnd], rest[hostsEnd:]
	u, err := url.Parse("x://h" + tail)
	if err != nil {
		return Config{}, fmt.Errorf("fleet store %q: %w", redactURL(raw), err)
	}
	var cfg Config
	web := "http://"
	if scheme == "etcds" {
		web = "https://"
	}
	for h := range strings.SplitSeq(hosts, ",") {
		ep, err := endpoint(h)
		if err != nil {
			return Config{}, fmt.Errorf("fleet store %q: %w", redactURL(raw), err)
		}
		cfg.Endpoints = append(cfg.Endpoints, web+ep)
	}
	cfg.Prefix = strings.TrimRight(u.Path, "/")
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.Contains(cfg.Prefix, "//") {
		return Config{}, fmt.Errorf("fleet store %q: prefix %q has an empty segment", redactURL(raw), cfg.Prefix)
	}
	if err := applyQuery(&cfg, u.Query(), scheme == "etcds"); err != nil {
		return Config{}, fmt.Errorf("fleet store %q: %w", redactURL(raw), err)
	}
	return cfg, nil
}

// endpoint checks one host[:port] of the URL and returns host:port.
func endpoint(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	if strings.Contains(h, "@") {
		return "", errors.New("credentials go in ?user=U&password-file=F, not before the host")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or a bare IPv6 address in brackets).
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
			return "", fmt.Errorf("host %q: want host:port", h)
		}
	}
	if host == "" {
		return "", fmt.Errorf("host %q: empty host name", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("host %q: bad port", h)
	}
	return net.JoinHostPort(host, port), nil
}

// applyQuery reads the URL's options into cfg.
func applyQuery(cfg *Config, q url.Values, useTLS bool) error {
	for k, v := range q {
		switch k {
		case "cacert", "cert", "key", "user", "password-file":
			if len(v) != 1 || v[0] == "" {
				return fmt.Errorf("option %s: give it once, with a value", k)
			}
		default:
			return fmt.Errorf("unknown option %q (known: cacert, cert, key, user, password-file)", k)
		}
	}
	cacert, cert, key := q.Get("cacert"), q.Get("cert"), q.Get("key")
	if !useTLS && (cacert != "" || cert != "" || key != "") {
		return errors.New("cacert, cert and key are for TLS: use etcds://")
	}
	if (cert == "") != (key == "") {
		return errors.New("cert and key go together")
	}
	if useTLS {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if cacert != "" {
			pem, err := os.ReadFile(cacert)
			if err != nil {
				return fmt.Errorf("cacert: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("cacert %s: no PEM certificate in it", cacert)
			}
			cfg.TLS.RootCAs = pool
		}
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return fmt.Errorf("client certificate: %w", err)
			}
			cfg.TLS.Certificates = []tls.Certificate{pair}
		}
	}
	user, pwFile := q.Get("user"), q.Get("password-file")
	if (user == "") != (pwFile == "") {
		return errors.New("user and password-file go together")
	}
	if user != "" {
		pw, err := readPassword(pwFile)
		if err != nil {
			return err
		}
		cfg.Username, cfg.Password = user, pw
	}
	return nil
}

// readPassword returns the first line of the private file at path.
func readPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password-file: %w", err)
	}
	defer f.Close()
	if err := keychain.CheckPrivate(f); err != nil {
		return "", fmt.Errorf("password-file: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("password-file %s: %w", path, err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("password-file %s: empty first line", path)
	}
	return pw, nil
}

// redactURL drops anything before an '@' in the host part, should a password have been put there.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		rest = "…@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
