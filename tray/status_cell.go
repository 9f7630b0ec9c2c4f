//go:build !headless

package tray

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// statusCell is one cell of the Status window's table: a text, or — in the actions column — the row's
// buttons. widget.Table makes cells from one template and reuses them for any row and column, so every
// cell can be either. A row that needs the user is tinted in the theme's warning colour, and its
// state is bold, in that colour, behind a warning sign. Fields are owned by the UI goroutine.
type statusCell struct {
	widget.BaseWidget
	bg     *canvas.Rectangle
	sign   *widget.Icon
	text   *widget.Label
	acts   *fyne.Container
	signIn *widget.Button
	// refresh and copyURL are "Refresh now" and "Copy proxy URL".
	refresh, copyURL *widget.Button

	server string     // the row's server, which the buttons act on
	do     func(item) // runs a button's menu item; nil in the prototype that measures the buttons
}

func newStatusCell(do func(item)) *statusCell {
	c := &statusCell{do: do, bg: canvas.NewRectangle(color.Transparent), text: widget.NewLabel(""),
		sign: widget.NewIcon(theme.NewWarningThemedResource(theme.WarningIcon()))}
	c.refresh = widget.NewButtonWithIcon("Refresh now", theme.ViewRefreshIcon(), func() { c.act(actRefresh) })
	c.copyURL = widget.NewButtonWithIcon("Copy proxy URL", theme.ContentCopyIcon(), func() { c.act(actCopyProxy) })
	c.signIn = widget.NewButtonWithIcon("Sign in", theme.LoginIcon(), func() { c.act(actSignIn) })
	c.signIn.Importance = widget.HighImportance
	// "Sign in" comes last: it comes and goes, and the buttons always there stay lined up.
	c.acts = container.NewHBox(c.refresh, c.copyURL, c.signIn)
	c.sign.Hide()
	c.acts.Hide()
	c.ExtendBaseWidget(c)
	return c
}

// CreateRenderer draws the cell. Its Refresh lays the cell out again (its parts come and go) and
// redraws every part; showText and showActions call it once they have changed the parts.
func (c *statusCell) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(container.NewStack(c.bg, container.NewBorder(nil, nil, c.sign, nil, c.text), c.acts))
}

func (c *statusCell) act(a action) {
	if c.do != nil && c.server != "" {
		c.do(item{Action: a, Server: c.server})
	}
}

// cellKind is what a text cell shows: a key cell (the server's name, its state) of a row that needs
// the user is bold, and the state also gets the warning colour and sign.
type cellKind int

const (
	cellPlain cellKind = iota
	cellName
	cellState
)

// showText makes the cell a text of server's row.
func (c *statusCell) showText(server, text string, attention bool, kind cellKind) {
	c.server = server
	c.acts.Hide()
	c.tint(attention)
	c.text.TextStyle.Bold = attention && kind != cellPlain
	c.text.Importance = widget.MediumImportance
	c.sign.Hide()
	if attention && kind == cellState {
		c.text.Importance = widget.WarningImportance
		c.sign.Show()
	}
	c.text.Text = text
	c.text.Show()
	c.Refresh()
}

// showActions makes the cell server's buttons, as a offers them.
func (c *statusCell) showActions(server string, a rowActions) {
	c.server = server
	c.text.Hide()
	c.sign.Hide()
	c.tint(a.Attention)
	if a.SignIn {
		c.signIn.Show()
	} else {
		c.signIn.Hide()
	}
	if a.CanRefresh {
		c.refresh.Enable()
	} else {
		c.refresh.Disable()
	}
	c.acts.Show()
	c.Refresh()
}

// tint colours the cell's background for a row that needs the user.
func (c *statusCell) tint(on bool) {
	var fill color.Color = color.Transparent
	if on {
		r, g, b, _ := theme.Color(theme.ColorNameWarning).RGBA()
		fill = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x38}
	}
	c.bg.FillColor = fill
}
