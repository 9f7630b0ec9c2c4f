//go:build !headless

package tray

import (
	"context"
	"time"

	"fyne.io/fyne/v2"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/keychain"
)

// fyneMenu turns the menu model into a fyne menu whose items call do with themselves.
func fyneMenu(items []item, do func(item)) *fyne.Menu {
	return fyne.NewMenu("authkeeper", fyneItems(items, do)...)
}

func fyneItems(items []item, do func(item)) []*fyne.MenuItem {
	out := make([]*fyne.MenuItem, 0, len(items))
	for _, it := range items {
		if it.Separator {
			out = append(out, fyne.NewMenuItemSeparator())
			continue
		}
		mi := fyne.NewMenuItem(it.Label, nil)
		mi.Disabled, mi.Checked = it.Disabled, it.Checked
		mi.IsQuit = it.Action == actQuit
		if it.Action != actNone {
			mi.Action = func() { do(it) }
		}
		if len(it.Children) > 0 {
			mi.ChildMenu = fyne.NewMenu("", fyneItems(it.Children, do)...)
		}
		out = append(out, mi)
	}
	return out
}

// actionTimeout bounds the engine calls a click starts that do not wait for the user.
const actionTimeout = time.Minute

// do carries out a click. UI goroutine; anything slow runs on its own goroutine and reports failures
// as notifications, never as a modal dialog.
func (u *ui) do(it item) {
	switch it.Action {
	case actRefresh:
		go u.background("Refresh "+it.Server, func(ctx context.Context) error {
			return u.eng.Refresh(ctx, it.Server, "user")
		})
	case actSignIn:
		u.gui(func() { u.signIn(it.Server) })
	case actCopyProxy:
		u.gui(func() { u.a.Clipboard().SetContent(u.eng.ProxyEndpoint(it.Server)) })
	case actCopyConfig:
		u.gui(func() { u.a.Clipboard().SetContent(clientConfig(it.Server, u.eng.ProxyURL(), u.eng.ProxyKey())) })
	case actRemove:
		u.gui(func() { u.confirmRemove(it.Server) })
	case actBusy:
		u.toggleBusy()
	case actAdd:
		u.gui(u.showAdd)
	case actStatus:
		u.gui(u.showStatus)
	case actNotifications:
		u.setPref(func(p *keychain.Prefs) { p.Notifications = !p.Notifications })
	case actStartAtLogin:
		u.toggleAutostart()
	case actQuit:
		u.cfg.Quit()
	}
}

// background runs f off the UI goroutine and notifies the user if it fails.
func (u *ui) background(what string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(u.ctx, actionTimeout)
	defer cancel()
	if err := f(ctx); err != nil && u.ctx.Err() == nil {
		u.out.send(fyne.NewNotification(what+" failed", err.Error()))
	}
}

// toggleBusy: unchecked, it takes the tray's lease (default TTL, so a forgotten toggle ends by
// itself); checked, it releases every lease, the user's way to say the agent turn is over.
func (u *ui) toggleBusy() {
	b := u.eng.Busy()
	leases := b.Leases()
	if len(leases) == 0 {
		if _, err := b.Start(trayBusyLease, "set from the tray", 0); err != nil {
			u.out.send(fyne.NewNotification("Agent turn busy failed", err.Error()))
		}
		return
	}
	for _, l := range leases {
		b.End(l.ID)
	}
}

// clientConfig is the MCP client config that points an agent at the proxy for server name: the
// proxy's URL for it, the access key in the X-Authkeeper-Key header (never in the URL), in the shape
// `authkeeper clients` prints for Claude Code, an mcpServers entry most agents read. "" while the
// proxy has no URL (it is not listening).
func clientConfig(name, proxyURL, key string) string {
	t, ok := clients.TargetByID(clientConfigTarget)
	if proxyURL == "" || !ok {
		return ""
	}
	s, err := t.Snippet(clients.Setup{ProxyURL: proxyURL, Key: key}, []string{name})
	if err != nil {
		return ""
	}
	return s
}

// clientConfigTarget is the client whose entry shape the tray copies.
const clientConfigTarget = "claude-code"
