package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Secrets never come from the command line (ps, shell history): the client secrets, a static token
// and an ID token are read from the environment or stdin, a private key from a file, and all of them
// travel to the owner only in the body of a control call: over its 0600 unix socket, on Windows over
// its named pipe, which admits the user alone.
const (
	envClientSecret    = "AUTHKEEPER_CLIENT_SECRET"
	envToken           = "AUTHKEEPER_TOKEN"
	envIDToken         = "AUTHKEEPER_IDP_ID_TOKEN"
	envIdPClientSecret = "AUTHKEEPER_IDP_CLIENT_SECRET"
)

// maxSecretInput bounds what is read for a token or a key file.
const maxSecretInput = 64 << 10

// staticToken returns the static token from stdin (fromStdin) or $AUTHKEEPER_TOKEN, or "" for none.
func staticToken(e env, fromStdin bool) (string, error) {
	return secretInput(e, fromStdin, "--token-stdin", envToken, "token", "the token or API key")
}

// idToken returns the user's ID token from the identity provider, from stdin (fromStdin) or
// $AUTHKEEPER_IDP_ID_TOKEN, or "" for none.
func idToken(e env, fromStdin bool) (string, error) {
	return secretInput(e, fromStdin, "--id-token-stdin", envIDToken, "ID token", "your ID token from the identity provider")
}

// secretInput returns a one-line secret: from stdin when fromStdin (flag names the option in errors;
// a terminal gets a prompt to paste prompt), else from the environment variable envName ("" when
// unset). Errors never quote the input.
func secretInput(e env, fromStdin bool, flag, envName, what, prompt string) (string, error) {
	if !fromStdin {
		return e.getenv(envName), nil
	}
	if e.stdin == nil {
		return "", errors.New(flag + ": no standard input")
	}
	if f, ok := e.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(e.stderr, "Paste %s, then press Enter and Ctrl-D:\n", prompt)
		}
	}
	data, err := io.ReadAll(io.LimitReader(e.stdin, maxSecretInput+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	tok := strings.TrimSpace(string(data))
	switch {
	case len(data) > maxSecretInput:
		return "", fmt.Errorf("%s: the input is too long for a %s", flag, what)
	case tok == "":
		return "", fmt.Errorf("%s: no %s on standard input", flag, what)
	case strings.ContainsFunc(tok, func(r rune) bool { return r < ' ' || r == 0x7f }):
		// The error never quotes the input: it is a secret.
		return "", fmt.Errorf("%s: the %s must be one line of printable characters", flag, what)
	}
	return tok, nil
}

// readKeyFile reads a PEM private key. Errors never quote the file's content.
func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--client-key-file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretInput+1))
	if err != nil {
		return "", fmt.Errorf("--client-key-file: %w", err)
	}
	if len(data) > maxSecretInput || !strings.Contains(string(data), "-----BEGIN ") {
		return "", fmt.Errorf("--client-key-file: %s is not a PEM private key", path)
	}
	return string(data), nil
}
