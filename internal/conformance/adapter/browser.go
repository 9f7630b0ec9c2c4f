package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// visitFlag makes the binary visit one authorization URL (the browser's detached tab).
const visitFlag = "--visit"

// browserLogEnv names the file the browser stand-in appends to; authkeeper passes its environment on
// to xdg-open.
const browserLogEnv = "AKCONF_BROWSER_LOG"

// openURL is xdg-open: it starts the visit in a detached process and returns at once, as xdg-open
// does when a browser is already running. pkg/browser waits for xdg-open to exit, and an authkeeper
// that serves its callback only after that (issue 11, point 12) would deadlock with an opener that
// delivers the callback itself before exiting.
func openURL(rawURL string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdg-open:", err)
		return 1
	}
	log, err := os.OpenFile(os.Getenv(browserLogEnv), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		log = os.Stderr
	}
	cmd := exec.Command(self, visitFlag, rawURL)
	cmd.Stdout, cmd.Stderr = log, log
	detach(cmd)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "xdg-open:", err)
		return 1
	}
	return 0
}

// visit plays the user who approves: the suite's authorization endpoint approves at once and
// redirects to the client's redirect_uri with code and state, so the visit requests the authorization
// URL, then the Location it redirects to — authkeeper's loopback callback.
func visit(ctx context.Context, authURL string) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return resp, string(body), nil
	}
	fmt.Printf("browser: open %s\n", authURL)
	resp, body, err := get(authURL)
	if err != nil {
		fmt.Printf("browser: %v\n", err)
		return 1
	}
	cb, err := resp.Location()
	if err != nil {
		fmt.Printf("browser: the authorization server answered %d without a redirect: %s\n", resp.StatusCode, body)
		return 1
	}
	fmt.Printf("browser: redirected to %s\n", cb)
	resp, body, err = get(cb.String())
	if err != nil {
		fmt.Printf("browser: callback: %v\n", err)
		return 1
	}
	fmt.Printf("browser: callback answered %d: %.200s\n", resp.StatusCode, body)
	return 0
}
