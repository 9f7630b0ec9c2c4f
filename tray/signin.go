//go:build !headless

package tray

import (
	"context"
	"errors"
	"net/url"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/oauth"
)

// signer is the part of the engine that signs a server in again.
type signer interface {
	SignIn(ctx context.Context, name string, device bool, onDevice func(*oauth.DeviceAuthorization)) error
}

// signIn starts "Sign in again" for server name, or — while one is running — brings its window back:
// a second click never starts a second flow. UI goroutine.
func (u *ui) signIn(name string) {
	if s, ok := u.signIns[name]; ok {
		s.w.Show()
		s.w.RequestFocus()
		return
	}
	s := newSignInWindow(u.ctx, u.a, u.eng, name)
	s.post, s.steps = u.cfg.Post, u.cfg.Steps
	u.signIns[name] = s
	s.w.SetOnClosed(func() {
		s.cancel()
		delete(u.signIns, name)
	})
	s.w.Show()
	s.start(false)
}

// signInWindow runs one server's interactive sign-in and shows where it stands: waiting for the
// browser, the device code to enter, or why it failed. It closes itself when the sign-in completes;
// the engine's signed_in event then brings the notification. Its fields are owned by the UI goroutine.
type signInWindow struct {
	w      fyne.Window
	ctx    context.Context
	eng    signer
	name   string
	status *widget.Label
	device *deviceBox
	retry  *widget.Button
	other  *widget.Button // switches to the device flow

	flow     context.CancelFunc
	running  bool
	toDevice bool         // the browser flow was cancelled to start the device flow
	post     func(func()) // runs UI work from other goroutines; fyne.Do
	steps    func(string) // tests: told "device" and "finished" once each reaches the UI
}

func newSignInWindow(ctx context.Context, a fyne.App, eng signer, name string) *signInWindow {
	s := &signInWindow{w: a.NewWindow("Sign in to " + name), ctx: ctx, eng: eng, name: name, flow: func() {}, post: fyne.Do}
	s.status = widget.NewLabel("")
	s.status.Wrapping = fyne.TextWrapWord
	s.device = newDeviceBox(a)
	s.retry = widget.NewButton("Try again", func() { s.start(false) })
	s.other = widget.NewButton("Use device code instead", func() {
		if s.running {
			s.toDevice = true
			s.flow()
			return
		}
		s.start(true)
	})
	s.w.SetContent(container.NewVBox(s.status, s.device.box,
		container.NewHBox(s.retry, s.other, widget.NewButton("Cancel", s.w.Close))))
	s.w.Resize(fyne.NewSize(460, 160))
	return s
}

// cancel ends a running flow (the window closed).
func (s *signInWindow) cancel() { s.flow() }

// start begins a browser (or device) sign-in. UI goroutine.
func (s *signInWindow) start(device bool) {
	ctx, cancel := context.WithCancel(s.ctx)
	s.flow, s.running = cancel, true
	s.retry.Hide()
	s.device.hide()
	if device {
		s.other.Hide()
		s.status.SetText("Asking " + s.name + "'s authorization server for a device code…")
	} else {
		s.other.Show()
		s.status.SetText("Finish signing in to " + s.name + " in your browser. This window closes when it is done.")
	}
	onDevice := func(d *oauth.DeviceAuthorization) {
		s.post(func() {
			s.status.SetText("On any device, open the page below and enter the code to sign in to " + s.name + ".")
			s.device.show(d)
			s.step("device")
		})
	}
	go func() {
		err := s.eng.SignIn(ctx, s.name, device, onDevice)
		cancel()
		s.post(func() {
			s.finished(err)
			s.step("finished")
		})
	}()
}

// finished shows the outcome of a flow. UI goroutine.
func (s *signInWindow) finished(err error) {
	s.running = false
	switch {
	case err == nil:
		s.status.SetText("Signed in to " + s.name + ".")
		s.w.Close()
	case s.toDevice:
		s.toDevice = false
		s.start(true)
	case s.ctx.Err() != nil:
	case errors.Is(err, oauth.ErrSignInInProgress):
		s.status.SetText("A sign-in to " + s.name + " is already waiting for you (started from the command line " +
			"or another window). Finish it in your browser, or try again once it has timed out.")
		s.retry.Show()
	default:
		s.status.SetText("Sign-in to " + s.name + " failed: " + err.Error())
		s.retry.Show()
		s.other.Show()
	}
}

// step tells a test that an asynchronous step has reached the UI.
func (s *signInWindow) step(name string) {
	if s.steps != nil {
		s.steps(name)
	}
}

// deviceBox shows a device-flow code with a Copy button and a link to the verification page.
type deviceBox struct {
	a    fyne.App
	box  *fyne.Container
	code *widget.Label
	link *widget.Hyperlink
}

func newDeviceBox(a fyne.App) *deviceBox {
	d := &deviceBox{a: a, code: widget.NewLabel(""), link: widget.NewHyperlink("", nil)}
	d.code.TextStyle = fyne.TextStyle{Bold: true, Monospace: true}
	copyCode := widget.NewButton("Copy code", func() { a.Clipboard().SetContent(d.code.Text) })
	d.box = container.NewVBox(container.NewHBox(widget.NewLabel("Code:"), d.code, copyCode), d.link)
	d.box.Hide()
	return d
}

func (d *deviceBox) show(da *oauth.DeviceAuthorization) {
	d.code.SetText(da.UserCode)
	page := da.VerificationURIComplete
	if page == "" {
		page = da.VerificationURI
	}
	d.link.SetText(page)
	if u, err := url.Parse(page); err == nil {
		d.link.SetURL(u)
	}
	d.box.Show()
}

func (d *deviceBox) hide() { d.box.Hide() }
