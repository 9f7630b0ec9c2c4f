package engine

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// Moving a grant to another machine (`authkeeper export NAME | ssh box authkeeper import`).
//
// A grant must have exactly one owner: two machines refreshing the same rotating refresh token make
// the AS see a reuse and revoke the grant for both (OAuth 2.1 §4.3.1). So an export is a move, in
// three steps that lose nothing whichever fails:
//
//  1. ExportBegin stops the server's keeper (a refresh in flight finishes and is saved first), reads
//     its record and removes the server from the settings; the record stays in the store. From here
//     on nothing on this machine refreshes the grant, even after a restart.
//  2. The caller seals the Transfer and writes it out.
//  3. ExportCommit deletes the record, without revoking anything (unlike Remove): the grant lives on
//     at the target. If writing failed, ExportAbort puts the server back and refreshes it again.
//
// A caller that dies between 1 and 3 leaves the server unconfigured and its record in the store:
// nothing refreshes it here, which is the safe side, since the output may have reached the target.

// Errors callers branch on.
var (
	// ErrHasCredentials: Import found credentials stored under the name and was not asked to replace
	// them.
	ErrHasCredentials = errors.New("already has credentials here")
	// ErrSharedStore: an export was asked of an engine whose store a fleet shares; every instance
	// already serves the grant from it, and removing it here would remove it for all.
	ErrSharedStore = errors.New("the grant is already shared through the fleet's store")
	// ErrURLMismatch: Import was given a server whose name is configured here for another URL.
	ErrURLMismatch = errors.New("a server of that name has another URL here")
)

// Transfer is a server's settings and credentials as they move between machines. Its Record holds
// token material: it travels only sealed (see app's export) or over the user-only control API.
type Transfer struct {
	Server keychain.Server `json:"server"`
	Record keychain.Record `json:"record"`
}

// ImportRequest asks Import to install a moved grant.
type ImportRequest struct {
	Transfer
	// Replace overwrites credentials already stored under the name; default false: refuse.
	Replace bool
	// From names the machine the grant came from, for the event log; default "another machine".
	From string
}

// ExportBegin stops refreshing server name here and returns its settings and record, for sealing; see
// the steps above. The server leaves the settings now; call ExportCommit once the transfer is written
// out, or ExportAbort with the returned server if it could not be.
func (e *Engine) ExportBegin(ctx context.Context, name string) (Transfer, error) {
	if e.FleetMode() {
		// Every instance reads the grant from the shared store: there is nothing to move, and deleting
		// the record here would delete it for the whole fleet.
		return Transfer{}, fmt.Errorf("%s: %w", name, ErrSharedStore)
	}
	k, err := e.keeper(name)
	if err != nil {
		return Transfer{}, err
	}
	srv, err := e.Server(name)
	if err != nil {
		return Transfer{}, err
	}
	// No refresh starts from here on, and one in flight finishes and is saved: the record read below is
	// the newest pair, and this machine never spends its refresh token again.
	k.Close()
	fail := func(err error) (Transfer, error) {
		return Transfer{}, errors.Join(err, e.restart(srv, k))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if k.Status().Unsaved {
		// The newest pair is only in memory (the store refused it): the stored refresh token is spent.
		return fail(fmt.Errorf("%s: its newest token is not saved to the store yet (is the keychain locked?); try again", name))
	}
	rec, err := e.store.Get(name)
	switch {
	case errors.Is(err, keychain.ErrNotFound):
		return fail(fmt.Errorf("%s has no credentials here to move: sign in first", name))
	case err != nil:
		return fail(fmt.Errorf("%s: read credentials: %w", name, err))
	}
	if tok, _ := k.Credentials(); !samePair(tok, rec) {
		return fail(fmt.Errorf("%s: the stored credentials are not the ones in use; try again", name))
	}
	e.mu.Lock()
	if e.keepers[name] != k {
		// Removed, or replaced by an import, while the keeper closed: that caller decided.
		e.mu.Unlock()
		return Transfer{}, fmt.Errorf("%s changed while it was being exported; try again", name)
	}
	next := e.settings
	next.Servers = slices.DeleteFunc(slices.Clone(e.settings.Servers), func(s keychain.Server) bool { return s.Name == name })
	if err := e.conf.Save(next); err != nil {
		e.mu.Unlock()
		return fail(fmt.Errorf("%s: save settings: %w", name, err))
	}
	e.settings = next
	delete(e.keepers, name)
	e.mu.Unlock()
	e.publish(Event{Kind: EventRemoved, Server: name, Trigger: TriggerUser, Outcome: OutcomeOK,
		Message: "moving to another machine: no longer refreshed here"})
	return Transfer{Server: srv, Record: rec}, nil
}

// samePair reports whether rec holds the pair tok (compared in constant time: they are secrets).
func samePair(tok oauth.Token, rec keychain.Record) bool {
	return subtle.ConstantTimeCompare([]byte(tok.AccessToken), []byte(rec.AccessToken)) == 1 &&
		subtle.ConstantTimeCompare([]byte(tok.RefreshToken), []byte(rec.RefreshToken)) == 1
}

// ExportCommit completes the move of server name begun by ExportBegin: it deletes the record here
// without revoking it (the grant lives on at the target). It is idempotent, and refuses when the name
// is configured here again meanwhile (an add or import after the export), whose record it must keep.
func (e *Engine) ExportCommit(name string) error {
	if _, err := e.Server(name); err == nil {
		return fmt.Errorf("%s is configured here again; its credentials are kept: %w", name, ErrServerExists)
	}
	if err := e.store.Delete(name); err != nil && !errors.Is(err, keychain.ErrNotFound) {
		return fmt.Errorf("%s: delete credentials: %w", name, err)
	}
	return nil
}

// ExportAbort undoes ExportBegin when the transfer could not be written out: srv (as ExportBegin
// returned it) goes back to the settings and its keeper refreshes the stored record again. Nothing
// left this machine, so no one else can hold the grant.
func (e *Engine) ExportAbort(srv keychain.Server) error {
	if err := srv.Validate(); err != nil {
		return err
	}
	release, err := e.reserve(srv.Name)
	if err != nil {
		return err
	}
	defer release()
	if _, err := e.Server(srv.Name); err == nil {
		return fmt.Errorf("%q: %w", srv.Name, ErrServerExists)
	}
	if _, err := e.store.Get(srv.Name); err != nil {
		return fmt.Errorf("%s: its credentials are not here any more: %w", srv.Name, err)
	}
	if err := e.addSettings(srv); err != nil {
		return err
	}
	return e.install(srv, nil, Event{Kind: EventAdded, Trigger: TriggerUser, Outcome: OutcomeOK,
		Message: "export cancelled: refreshed here again"})
}

// Import installs a grant moved from another machine (see ExportBegin): the server joins the
// settings unless it is configured already for the same URL (another URL is refused), the record is
// stored unless one is (ErrHasCredentials, unless req.Replace), and a keeper starts refreshing it.
// Nothing is changed when it fails. It returns the server's status.
func (e *Engine) Import(ctx context.Context, req ImportRequest) (ServerStatus, error) {
	srv, rec := req.Server, req.Record
	name := srv.Name
	if err := srv.Validate(); err != nil {
		return ServerStatus{}, err
	}
	if err := oauth.CheckURL(srv.URL); err != nil {
		return ServerStatus{}, fmt.Errorf("%s: a server's URL must be https (plain http only to this machine), since its credentials go there: %w",
			name, err)
	}
	release, err := e.reserve(name)
	if err != nil {
		return ServerStatus{}, err
	}
	defer release()
	existing, err := e.Server(name)
	exists := err == nil
	if exists {
		if existing.URL != srv.URL {
			return ServerStatus{}, fmt.Errorf("%s is %s here but %s in the import: %w", name, oauth.RedactURL(existing.URL), oauth.RedactURL(srv.URL), ErrURLMismatch)
		}
		srv = existing // same server: the settings here stay as they are
	}
	cur, err := e.store.Get(name)
	switch {
	case err == nil && !req.Replace:
		return ServerStatus{}, fmt.Errorf("%s %w", name, ErrHasCredentials)
	case err == nil:
	case errors.Is(err, keychain.ErrNotFound):
		cur = keychain.Record{} // Revision 0: a shared store writes only if still absent
	default:
		return ServerStatus{}, fmt.Errorf("%s: read credentials: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return ServerStatus{}, err
	}
	var old *Keeper
	if exists {
		if old, err = e.keeper(name); err != nil {
			return ServerStatus{}, err
		}
		// Its refresh in flight finishes and is saved before the import overwrites the record, and it
		// never saves again.
		old.Close()
	}
	rec.Revision = cur.Revision // the store's compare-and-swap, where it has one (see keychain.Store.Put)
	if _, err := e.store.Put(name, rec); err != nil {
		err = fmt.Errorf("%s: save credentials: %w", name, err)
		if old != nil {
			err = errors.Join(err, e.restart(srv, old))
		}
		return ServerStatus{}, err
	}
	if !exists {
		if err := e.addSettings(srv); err != nil {
			// Leave nothing half-imported; the grant is not revoked: the import can be run again.
			return ServerStatus{}, errors.Join(err, e.store.Delete(name))
		}
	}
	from := req.From
	if from == "" {
		from = "another machine"
	}
	ev := Event{Kind: EventAdded, Trigger: TriggerUser, Outcome: OutcomeOK, Scopes: rec.Scopes, Expiry: rec.Expiry,
		Message: "imported from " + from}
	if exists {
		ev.Kind = EventSignedIn
	}
	if err := e.install(srv, old, ev); err != nil {
		return ServerStatus{}, err
	}
	k, err := e.keeper(name)
	if err != nil {
		return ServerStatus{}, err
	}
	st := k.Status()
	st.URL = srv.URL
	return st, nil
}

// reserve holds name against a concurrent Add, Import or ExportAbort until release is called.
func (e *Engine) reserve(name string) (release func(), err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.adding[name] {
		return nil, fmt.Errorf("%q is being added or imported right now: %w", name, ErrServerExists)
	}
	e.adding[name] = true
	return func() {
		e.mu.Lock()
		delete(e.adding, name)
		e.mu.Unlock()
	}, nil
}

// addSettings appends srv to the settings and saves them.
func (e *Engine) addSettings(srv keychain.Server) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.keepers[srv.Name]; ok {
		return fmt.Errorf("%q: %w", srv.Name, ErrServerExists)
	}
	next := e.settings
	next.Servers = append(slices.Clone(e.settings.Servers), srv)
	if err := e.conf.Save(next); err != nil {
		return fmt.Errorf("%s: save settings: %w", srv.Name, err)
	}
	e.settings = next
	return nil
}

// install builds srv's keeper from its stored record and starts it, in place of old (closed; nil when
// the server had none), then publishes ev for it.
func (e *Engine) install(srv keychain.Server, old *Keeper, ev Event) error {
	k, err := e.newKeeper(srv)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.closing || (old != nil && e.keepers[srv.Name] != old) {
		// Closing: a keeper started now would never be closed and would refresh next to the next owner,
		// which loads the record itself. Replaced: a Remove or another import decided meanwhile.
		e.mu.Unlock()
		k.Close()
		if e.closing {
			return fmt.Errorf("%s: %w", srv.Name, errClosed)
		}
		return fmt.Errorf("%s changed meanwhile; see `authkeeper status`", srv.Name)
	}
	e.keepers[srv.Name] = k
	e.mu.Unlock()
	k.Start()
	if e.joining() {
		e.fleet.f.Join(srv.Name) // as Start does for every keeper; idempotent for a name already joined
	}
	ev.Server = srv.Name
	e.publish(ev)
	return nil
}

// restart replaces old, a keeper closed by an export or import that then failed, with a new one built
// from the stored record: the server is refreshed here again as if nothing had happened.
func (e *Engine) restart(srv keychain.Server, old *Keeper) error {
	return e.install(srv, old, Event{Kind: EventWarning, Trigger: TriggerUser, Outcome: OutcomeOK,
		Message: "the move was abandoned: refreshed here again"})
}
