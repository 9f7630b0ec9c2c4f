package keychain

import (
	"errors"
	"fmt"
	"time"

	"github.com/zalando/go-keyring"
)

// keyringCalls wraps go-keyring's package functions (its only API; the provider is a package global
// this package never replaces) with a timeout and error classification. Safe for concurrent use.
type keyringCalls struct {
	service string
	timeout time.Duration
	before  func(op, item string) // KeyringConfig.beforeCall, for tests; may be nil
}

func (k keyringCalls) get(item string) (string, error) {
	k.hook("get", item)
	return guard(k, func() (string, error) { return keyring.Get(k.service, item) })
}

func (k keyringCalls) set(item, value string) error {
	k.hook("set", item)
	_, err := guard(k, func() (struct{}, error) { return struct{}{}, keyring.Set(k.service, item, value) })
	return err
}

func (k keyringCalls) del(item string) error {
	k.hook("delete", item)
	_, err := guard(k, func() (struct{}, error) { return struct{}{}, keyring.Delete(k.service, item) })
	return err
}

func (k keyringCalls) hook(op, item string) {
	if k.before != nil {
		k.before(op, item)
	}
}

// errTimeout is what guard reports, before classification, when the keychain does not answer.
var errTimeout = errors.New("no answer")

// guard runs f with a timeout and turns its error into one of this package's. On timeout f's goroutine
// is abandoned: go-keyring offers no way to cancel a call, and waiting would hang the caller (see
// KeyringConfig.Timeout); its result travels only through the channel, so a late answer races with
// nothing. guard also recovers a panic in f: go-keyring's prompt handling dereferences
// the nil signal it receives when the bus connection closes mid-prompt.
func guard[T any](k keyringCalls, f func() (T, error)) (T, error) {
	var zero T
	if err := preflight(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{err: fmt.Errorf("go-keyring panicked: %v", r)}
			}
		}()
		v, err := f()
		done <- result{v, err}
	}()
	t := time.NewTimer(k.timeout)
	defer t.Stop()
	var r result
	select {
	case r = <-done:
	case <-t.C:
		r.err = fmt.Errorf("%w within %v", errTimeout, k.timeout)
	}
	switch {
	case r.err == nil:
		return r.v, nil
	case errors.Is(r.err, keyring.ErrNotFound):
		return zero, ErrNotFound
	case errors.Is(r.err, keyring.ErrSetDataTooBig):
		return zero, fmt.Errorf("item too big for this keychain (lower the chunk size): %w", r.err)
	}
	return zero, diagnose(r.err)
}
