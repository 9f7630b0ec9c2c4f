package engine

import (
	"errors"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
)

// Credentials the keychain would not give at start (locked, not answering) are read again: every
// keychainRetry, and at once (at most once a second) when a caller asks for such a server's token.

// scheduleReload arms the keychain retry when a server's credentials are still unreadable.
func (e *Engine) scheduleReload() {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.scheduleReloadLocked()
}

func (e *Engine) scheduleReloadLocked() {
	if e.reloadTimer != nil || e.reloadClosed {
		return
	}
	for _, k := range e.keeperList() {
		if k.Unreadable() {
			e.reloadTimer = e.cfg.Clock.AfterFunc(KeychainRetry, func() {
				e.reloadMu.Lock()
				e.reloadTimer = nil
				closed := e.reloadClosed
				e.reloadMu.Unlock()
				if !closed {
					e.reload()
				}
			})
			return
		}
	}
}

// kickReload is a KeeperConfig.OnUnreadable: a caller waits on unreadable credentials, so the keychain
// is tried now, unless it was tried less than a second ago or is being tried. It never blocks.
func (e *Engine) kickReload() {
	if time.Duration(e.cfg.Clock.Now().UnixNano()-e.lastReload.Load()) < time.Second {
		return
	}
	go e.reload()
}

// lockedStore is a store that can tell it is locked without prompting (see keychain.KeyringStore).
type lockedStore interface{ Locked() bool }

// reload reads the credentials of every server whose record could not be read, restores those the
// keychain now gives (or none, when it has no record: the server then needs a sign-in), and tries
// again later for the rest. One reload runs at a time. While the keychain says it is locked nothing is
// read: reading an item of a locked gnome-keyring shows an unlock prompt, and one every retry would
// be a prompt storm.
func (e *Engine) reload() {
	if !e.reloading.CompareAndSwap(false, true) {
		return
	}
	defer e.reloading.Store(false)
	e.lastReload.Store(e.cfg.Clock.Now().UnixNano())
	defer e.scheduleReload()
	if ls, ok := e.store.(lockedStore); ok && ls.Locked() {
		return
	}
	for _, k := range e.keeperList() {
		if !k.Unreadable() {
			continue
		}
		s, err := e.Server(k.Status().Name)
		if err != nil {
			continue // removed meanwhile
		}
		rec, err := e.store.Get(s.Name)
		if err != nil && !errors.Is(err, keychain.ErrNotFound) {
			k.StillUnreadable(err) // the message follows the cause (locked, gone, timing out)
			continue
		}
		k.Restore(e.fromRecord(s, rec))
	}
}
