package fleet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/authkeeper/authkeeper/keychain"
)

var _ keychain.Store = (*Fleet)(nil)

// envelope is the value stored at PREFIX/records/NAME. Only Sealed is secret, and it is ciphertext:
// Keys.Seal of the JSON record, bound to the key it is stored under.
type envelope struct {
	V       int       `json:"v"`
	Writer  string    `json:"writer"`
	Written time.Time `json:"written"`
	Kid     string    `json:"kid"`
	Sealed  string    `json:"sealed"` // standard base64
}

const envelopeVersion = 1

// Get returns name's record: Revision is its etcd ModRevision, Written the time in its envelope. A
// missing record is an error wrapping keychain.ErrNotFound; an unreachable cluster or one without
// quorum, keychain.ErrUnavailable; a record that does not open, keychain.ErrCorrupt and ErrTampered, or
// ErrUnknownKey when it was sealed with a key this instance lacks.
func (f *Fleet) Get(name string) (keychain.Record, error) {
	if err := keychain.ValidName(name); err != nil {
		return keychain.Record{}, err
	}
	key := f.key("records", name)
	ctx, cancel := f.opContext(f.ctx)
	defer cancel()
	resp, err := f.cli.Get(ctx, key)
	if err != nil {
		return keychain.Record{}, opError("read", name, err)
	}
	if len(resp.Kvs) == 0 {
		return keychain.Record{}, fmt.Errorf("fleet: %s: %w", name, keychain.ErrNotFound)
	}
	rec, env, err := f.open(key, resp.Kvs[0].Value)
	if err != nil {
		return keychain.Record{}, fmt.Errorf("fleet: record %s: %w", name, err)
	}
	rec.Revision = uint64(resp.Kvs[0].ModRevision)
	rec.Written = env.Written
	return rec, nil
}

// Put stores rec under name if the stored record's ModRevision is still rec.Revision (0: none is
// stored) and, when rec.RefreshStarted is set (the mark that a refresh is about to spend the stored
// refresh token), only while this instance holds name's election. A failed condition is an error
// wrapping keychain.ErrConflict that says which; an unreachable cluster, no quorum or a timeout,
// keychain.ErrUnavailable (after a timeout the write may have happened: read again). It returns rec
// with Revision set to the new ModRevision and Written to the time of the write.
func (f *Fleet) Put(name string, rec keychain.Record) (keychain.Record, error) {
	if err := keychain.ValidName(name); err != nil {
		return rec, err
	}
	key := f.key("records", name)
	now := time.Now().UTC()
	body := rec
	body.Revision, body.Written = 0, now
	val, err := f.seal(key, body, now)
	if err != nil {
		return rec, fmt.Errorf("fleet: write %s: %w", name, err)
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", int64(rec.Revision))}
	orElse := []clientv3.Op{clientv3.OpGet(key, clientv3.WithKeysOnly())}
	if !rec.RefreshStarted.IsZero() {
		lead, leadRev, ok := f.leadership(name)
		if !ok {
			return rec, fmt.Errorf("fleet: write %s: %w: this instance is not its elected refresher", name, keychain.ErrConflict)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(lead), "=", leadRev))
		orElse = append(orElse, clientv3.OpGet(lead, clientv3.WithKeysOnly()))
	}
	ctx, cancel := f.opContext(f.ctx)
	defer cancel()
	resp, err := f.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, val)).Else(orElse...).Commit()
	if err != nil {
		return rec, opError("write", name, err)
	}
	if !resp.Succeeded {
		stored := int64(0)
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			stored = kvs[0].ModRevision
		}
		switch {
		case stored == 0 && rec.Revision != 0:
			return rec, fmt.Errorf("fleet: write %s: %w: read at revision %d, since deleted", name, keychain.ErrConflict, rec.Revision)
		case stored != int64(rec.Revision):
			return rec, fmt.Errorf("fleet: write %s: %w: read at revision %d, stored is %d", name, keychain.ErrConflict, rec.Revision, stored)
		}
		return rec, fmt.Errorf("fleet: write %s: %w: this instance no longer holds its election", name, keychain.ErrConflict)
	}
	rec.Revision = uint64(resp.Header.Revision)
	rec.Written = now
	return rec, nil
}

// Delete removes name's record, or returns an error wrapping keychain.ErrNotFound.
func (f *Fleet) Delete(name string) error {
	if err := keychain.ValidName(name); err != nil {
		return err
	}
	ctx, cancel := f.opContext(f.ctx)
	defer cancel()
	f.deleteStarts(name)
	resp, err := f.cli.Delete(ctx, f.key("records", name))
	var rev int64
	if err == nil && resp.Deleted > 0 {
		rev = resp.Header.Revision
	}
	f.deleteEnds(name, rev)
	switch {
	case err != nil:
		return opError("delete", name, err)
	case resp.Deleted == 0:
		return fmt.Errorf("fleet: %s: %w", name, keychain.ErrNotFound)
	}
	return nil
}

// seal builds the envelope of rec for key.
func (f *Fleet) seal(key string, rec keychain.Record, now time.Time) (string, error) {
	plain, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	sealed, err := f.cfg.Keys.Seal([]byte(key), plain)
	clear(plain)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(envelope{V: envelopeVersion, Writer: f.cfg.Instance, Written: now,
		Kid: f.cfg.Keys.CurrentID(), Sealed: base64.StdEncoding.EncodeToString(sealed)})
	return string(b), err
}

// open decodes and opens an envelope stored under key. Errors say nothing of the content.
func (f *Fleet) open(key string, val []byte) (keychain.Record, envelope, error) {
	var env envelope
	if err := json.Unmarshal(val, &env); err != nil || env.V != envelopeVersion {
		return keychain.Record{}, env, fmt.Errorf("%w: not a version %d record envelope", keychain.ErrCorrupt, envelopeVersion)
	}
	sealed, err := base64.StdEncoding.DecodeString(env.Sealed)
	if err != nil {
		return keychain.Record{}, env, fmt.Errorf("%w: %w", keychain.ErrCorrupt, ErrTampered)
	}
	plain, err := f.cfg.Keys.Open([]byte(key), sealed)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return keychain.Record{}, env, fmt.Errorf("%w; add that key to this instance's fleet keys", err)
	case err != nil:
		return keychain.Record{}, env, fmt.Errorf("%w: %w", keychain.ErrCorrupt, err)
	}
	defer clear(plain)
	var rec keychain.Record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return keychain.Record{}, env, fmt.Errorf("%w: the sealed value is not a record", keychain.ErrCorrupt)
	}
	return rec, env, nil
}

// opError wraps an etcd request's error: keychain.ErrUnavailable when the cluster did not answer, has
// no leader or timed out.
func opError(op, name string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("fleet: %s %s: %w (etcd unreachable or without quorum: %w)", op, name, keychain.ErrUnavailable, err)
	}
	return fmt.Errorf("fleet: %s %s: %w", op, name, err)
}

// unavailable reports whether err means etcd did not answer in time, or answered without a leader.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if s, ok := status.FromError(err); ok {
		return s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded || s.Code() == codes.Canceled
	}
	return false
}
