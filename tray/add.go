//go:build !headless

package tray

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
)

// adder is the part of the engine the Add server window uses.
type adder interface {
	Probe(ctx context.Context, url string) (*oauth.Probe, error)
	Add(ctx context.Context, req engine.AddRequest) error
}

const (
	// probeDelay is how long the URL must stay unchanged before it is probed: one probe per pause in
	// typing, not one per key.
	probeDelay = 400 * time.Millisecond
	// probeTimeout bounds one probe; an unreachable host then says so instead of "Checking…" forever.
	probeTimeout = 15 * time.Second
)

// showAdd opens the Add server window, or brings back the one already open. UI goroutine.
func (u *ui) showAdd() {
	if u.adder != nil {
		u.adder.w.Show()
		u.adder.w.RequestFocus()
		return
	}
	u.adder = newAddWindow(u.ctx, u.a, u.eng, u.cfg.Clock)
	u.adder.post, u.adder.steps = u.cfg.Post, u.cfg.Steps
	u.adder.w.SetOnClosed(func() {
		u.adder.cancel()
		u.adder = nil
	})
	u.adder.w.Show()
}

// addWindow adds a server: it probes the URL as the user types, says plainly what the server needs,
// asks for what is missing (a client id, a static token), then signs in. The engine saves nothing
// until the sign-in succeeds. Fields are owned by the UI goroutine.
type addWindow struct {
	w     fyne.Window
	ctx   context.Context
	eng   adder
	clock engine.Clock

	url, name, clientID, secret, token, expiry *widget.Entry
	intro, finding, next, status               *widget.Label
	urlItem                                    *widget.FormItem
	form                                       *widget.Form
	clientBox, tokenBox                        *fyne.Container
	device                                     *deviceBox
	adv                                        *advanced
	signIn, useDevice, add                     *widget.Button

	nameEdited bool
	probe      *oauth.Probe // the finding for the URL the field shows; nil when there is none
	timer      engine.Timer
	stopProbe  context.CancelFunc
	stopAdd    context.CancelFunc
	post       func(func()) // runs UI work from other goroutines; fyne.Do
	steps      func(string) // tests: told "probed URL shown|stale", "device", "added" after each async step
}

func newAddWindow(ctx context.Context, a fyne.App, eng adder, clock engine.Clock) *addWindow {
	w := &addWindow{w: a.NewWindow("Add an MCP server"), ctx: ctx, eng: eng, clock: clock,
		stopProbe: func() {}, stopAdd: func() {}, post: fyne.Do}
	entry := func(placeholder string) *widget.Entry {
		e := widget.NewEntry()
		e.SetPlaceHolder(placeholder)
		return e
	}
	w.url = entry("https://mcp.example.com/mcp")
	w.name = entry("a short name, e.g. linear")
	w.clientID = entry("client id registered for authkeeper")
	w.secret = widget.NewPasswordEntry()
	w.secret.SetPlaceHolder("client secret (optional)")
	w.token = widget.NewPasswordEntry()
	w.token.SetPlaceHolder("token or API key")
	w.expiry = entry("expiry date, YYYY-MM-DD (optional)")
	w.intro = widget.NewLabel("")
	w.intro.Wrapping = fyne.TextWrapWord
	w.intro.Hide()
	w.finding = widget.NewLabel("Type the MCP server's URL.")
	w.finding.Wrapping = fyne.TextWrapWord
	w.next = widget.NewLabel("")
	w.next.Wrapping = fyne.TextWrapWord
	w.next.TextStyle.Bold = true
	w.status = widget.NewLabel("")
	w.status.Wrapping = fyne.TextWrapWord
	w.device = newDeviceBox(a)
	w.adv = newAdvanced()
	w.clientBox = container.NewVBox(widget.NewLabel("This server's authorization server cannot register authkeeper by itself. Enter a client id registered for it:"), w.clientID, w.secret)
	w.tokenBox = container.NewVBox(w.token, w.expiry)
	w.clientBox.Hide()
	w.tokenBox.Hide()
	w.signIn = widget.NewButton("Sign in", func() { w.submit(false) })
	w.signIn.Importance = widget.HighImportance
	w.useDevice = widget.NewButton("Use device code", func() { w.submit(true) })
	w.add = widget.NewButton("Add", func() { w.submit(false) })
	w.add.Importance = widget.HighImportance
	w.url.OnChanged = w.changed
	w.name.OnChanged = func(string) { w.nameEdited = true }
	w.urlItem = widget.NewFormItem("URL", w.url)
	w.form = widget.NewForm(w.urlItem, widget.NewFormItem("Name", w.name))
	// A machine identity needs the client id and secret whatever the server's registration offers.
	w.adv.clientCredentials.OnChanged = func(on bool) {
		if on || (w.probe != nil && w.probe.Requirement == oauth.OAuthSignIn && w.probe.Registration == "") {
			w.clientBox.Show()
		} else {
			w.clientBox.Hide()
		}
		w.showNext(on)
	}
	w.w.SetContent(container.NewVBox(w.intro, w.form, w.finding, w.next, w.clientBox, w.tokenBox, w.adv.box, w.device.box, w.status,
		container.NewHBox(w.signIn, w.useDevice, w.add, widget.NewButton("Close", w.w.Close))))
	w.w.Resize(fyne.NewSize(520, 300))
	w.showFinding(nil, nil)
	return w
}

// welcome opens the window for the first run: it says what authkeeper is for and asks for the first
// server.
func (w *addWindow) welcome() {
	w.w.SetTitle("Welcome to authkeeper: add your first MCP server")
	w.intro.SetText("authkeeper keeps your AI agents signed in to MCP servers: you sign in once, and it renews " +
		"the tokens before they expire. Paste the URL of the first server to add, e.g. mcp.example.com/mcp " +
		"(https:// may be left out).")
	w.intro.Show()
}

// showNext says what happens next for the current finding; machine is the machine-identity choice.
func (w *addWindow) showNext(machine bool) {
	next := nextStep(w.probe, machine)
	w.next.SetText(next)
	if next == "" {
		w.next.Hide()
	} else {
		w.next.Show()
	}
}

// cancel stops a probe or a sign-in in flight (the window closed).
func (w *addWindow) cancel() {
	w.stopProbe()
	w.stopAdd()
}

// changed schedules a probe of the new URL once typing pauses, and forgets the old finding at once.
func (w *addWindow) changed(text string) {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.stopProbe()
	w.probe = nil
	w.showNext(false)
	raw := normalizeURL(text)
	// Say which URL is used when it is not what the field shows (a scheme was added).
	hint := ""
	if raw != strings.TrimSpace(text) {
		hint = "Using " + raw
	}
	if w.urlItem.HintText != hint {
		w.urlItem.HintText = hint
		w.form.Refresh()
	}
	if !w.nameEdited {
		w.name.SetText(nameFor(raw))
		w.nameEdited = false
	}
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		w.showFinding(nil, nil)
		return
	}
	w.finding.SetText("Checking " + raw + "…")
	ctx, cancel := context.WithTimeout(w.ctx, probeTimeout)
	w.stopProbe = cancel
	w.timer = w.clock.AfterFunc(probeDelay, func() {
		p, err := w.eng.Probe(ctx, raw)
		superseded := errors.Is(ctx.Err(), context.Canceled) // the field changed (maybe back to raw)
		cancel()
		w.post(func() {
			// The field moved on while the probe ran: this finding is about a URL no longer shown.
			if normalizeURL(w.url.Text) != raw || superseded {
				w.step("probed " + raw + " stale")
				return
			}
			w.showFinding(p, err)
			w.step("probed " + raw + " shown")
		})
	})
}

// showFinding says what the server needs and shows the fields and buttons for it.
func (w *addWindow) showFinding(p *oauth.Probe, err error) {
	w.probe = p
	w.clientBox.Hide()
	w.tokenBox.Hide()
	w.signIn.Hide()
	w.useDevice.Hide()
	w.add.Hide()
	w.showNext(w.adv.clientCredentials.Checked)
	switch {
	case err != nil:
		w.finding.SetText("Unreachable: " + err.Error())
	case p == nil:
		w.finding.SetText("Type the MCP server's URL, e.g. https://mcp.example.com/mcp.")
	case p.Requirement == oauth.OAuthSignIn:
		w.finding.SetText("OAuth sign-in: " + p.Reason + "." + pkceAdvice(p))
		if p.Registration == "" || w.adv.clientCredentials.Checked {
			w.clientBox.Show()
		}
		w.signIn.Show()
		if p.AuthServer != nil && p.AuthServer.DeviceAuthorizationEndpoint != "" {
			w.useDevice.Show()
		}
	case p.Requirement == oauth.StaticToken:
		w.finding.SetText("Static token or API key needed: " + p.Reason)
		w.tokenBox.Show()
		w.add.Show()
	default:
		w.finding.SetText("No auth needed: " + p.Reason)
		w.add.Show()
	}
}

// submit adds the server as the finding says: sign in (browser or device code), or save the token.
func (w *addWindow) submit(device bool) {
	if w.probe == nil {
		return
	}
	req := engine.AddRequest{Name: strings.TrimSpace(w.name.Text), URL: normalizeURL(w.url.Text), Device: device}
	switch w.probe.Requirement {
	case oauth.OAuthSignIn:
		if err := w.adv.apply(&req); err != nil {
			w.status.SetText(err.Error())
			return
		}
		if id := strings.TrimSpace(w.clientID.Text); id != "" {
			req.Client = &oauth.StaticClient{ID: id, Secret: w.secret.Text}
		} else if w.probe.Registration == "" || req.ClientCredentials {
			w.status.SetText("Enter the client id first: this authorization server cannot register one.")
			return
		}
		if req.ClientCredentials && w.secret.Text == "" {
			w.status.SetText("A machine identity needs the client secret.")
			return
		}
	case oauth.StaticToken:
		req.StaticToken = strings.TrimSpace(w.token.Text)
		if req.StaticToken == "" {
			w.status.SetText("Paste the token or API key first.")
			return
		}
		if d := strings.TrimSpace(w.expiry.Text); d != "" {
			t, err := time.ParseInLocation(time.DateOnly, d, time.Local)
			if err != nil {
				w.status.SetText("The expiry date must look like 2030-12-31.")
				return
			}
			req.StaticExpiry = t
		}
	}
	req.OnDevice = func(d *oauth.DeviceAuthorization) {
		w.post(func() {
			w.status.SetText("On any device, open the page below and enter the code.")
			w.device.show(d)
			w.step("device")
		})
	}
	w.busy(true)
	switch {
	case device:
		w.status.SetText("Asking for a device code…")
	case req.ClientCredentials:
		w.status.SetText("Getting a token for " + req.Name + " with its client credentials…")
	case w.probe.Requirement == oauth.OAuthSignIn:
		w.status.SetText("Finish signing in to " + req.Name + " in your browser…")
		// The browser may not open (no default browser, a blocked opener): the URL is shown so the
		// sign-in can be finished by pasting it.
		req.OnURL = func(u string) {
			w.post(func() {
				w.status.SetText("Finish signing in to " + req.Name + " in your browser. If it did not open, open:\n" + u)
				w.step("url")
			})
		}
	default:
		w.status.SetText("Adding " + req.Name + "…")
	}
	ctx, cancel := context.WithCancel(w.ctx)
	w.stopAdd = cancel
	go func() {
		err := w.eng.Add(ctx, req)
		cancel()
		w.post(func() {
			w.added(req.Name, err)
			w.step("added")
		})
	}()
}

// added shows the outcome of Add. On failure the engine kept nothing, so the form can be retried.
func (w *addWindow) added(name string, err error) {
	w.device.hide()
	w.busy(false)
	if err != nil {
		w.status.SetText(fmt.Sprintf("Could not add %s: %v", name, err))
		return
	}
	w.status.SetText("Added " + name + ". Point agents at it with “Copy client config” in the tray menu.")
	w.token.SetText("")
	w.secret.SetText("")
}

// step tells a test that an asynchronous step has reached the UI.
func (w *addWindow) step(s string) {
	if w.steps != nil {
		w.steps(s)
	}
}

func (w *addWindow) busy(b bool) {
	for _, x := range []fyne.Disableable{w.url, w.name, w.signIn, w.useDevice, w.add} {
		if b {
			x.Disable()
		} else {
			x.Enable()
		}
	}
}

// nameFor suggests a server name from its URL: the first meaningful label of the host
// ("mcp.linear.app" → "linear").
func nameFor(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	labels := strings.Split(u.Hostname(), ".")
	for len(labels) > 2 && slices.Contains([]string{"mcp", "api", "www"}, labels[0]) {
		labels = labels[1:]
	}
	if net.ParseIP(u.Hostname()) != nil {
		return strings.ReplaceAll(u.Host, ":", "-") // "127.0.0.1-8080"
	}
	return labels[0]
}
