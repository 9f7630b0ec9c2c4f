package fleet

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is the fleet as etcd holds it, read in one transaction.
type Status struct {
	Instance string                 // this instance's id
	Members  []Member               // live instances (membership keys on leases), by ID
	Servers  map[string]ServerState // by server name: every name with a record, an election or a serving key
}

// Member is one live instance, as it registered itself.
type Member struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Version string    `json:"version,omitempty"`
}

// ServerState is one server's place in the fleet.
type ServerState struct {
	Owner      string    `json:"owner,omitempty"`       // the elected instance ("" none elected)
	Serving    []string  `json:"serving,omitempty"`     // instances that joined name, sorted
	LastWrite  time.Time `json:"last_write,omitzero"`   // the record's envelope time
	LastWriter string    `json:"last_writer,omitempty"` // instance that wrote it
	Revision   uint64    `json:"revision,omitempty"`    // the record's ModRevision
}

// Status reads the fleet's members and, per server, its elected instance, the instances serving it and
// its record's last write. Errors wrap keychain.ErrUnavailable when etcd does not answer.
func (f *Fleet) Status(ctx context.Context) (Status, error) {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	prefixes := []string{f.key("members") + "/", f.key("records") + "/", f.key("lead") + "/", f.key("serving") + "/"}
	var ops []clientv3.Op
	for _, p := range prefixes {
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if p == f.key("serving")+"/" {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		ops = append(ops, clientv3.OpGet(p, opts...))
	}
	resp, err := f.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return Status{}, opError("read the state of", "the fleet", err)
	}
	st := Status{Instance: f.cfg.Instance, Servers: map[string]ServerState{}}
	ranges := make([][]*kv, len(prefixes))
	for i, r := range resp.Responses {
		for _, x := range r.GetResponseRange().Kvs {
			ranges[i] = append(ranges[i], &kv{rest: strings.TrimPrefix(string(x.Key), prefixes[i]),
				value: x.Value, create: x.CreateRevision, mod: x.ModRevision})
		}
	}
	for _, x := range ranges[0] {
		var m Member
		if json.Unmarshal(x.value, &m) == nil {
			st.Members = append(st.Members, m)
		}
	}
	slices.SortFunc(st.Members, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	for _, x := range ranges[1] {
		s := st.Servers[x.rest]
		var env envelope
		if json.Unmarshal(x.value, &env) == nil {
			s.LastWrite, s.LastWriter = env.Written, env.Writer
		}
		s.Revision = uint64(x.mod)
		st.Servers[x.rest] = s
	}
	owners := map[string]int64{} // name → CreateRevision of the owner's key
	for _, x := range ranges[2] {
		name, _, _ := strings.Cut(x.rest, "/")
		s := st.Servers[name]
		if rev, ok := owners[name]; !ok || x.create < rev {
			owners[name] = x.create
			s.Owner = string(x.value)
		}
		st.Servers[name] = s
	}
	for _, x := range ranges[3] {
		name, id, ok := strings.Cut(x.rest, "/")
		if !ok {
			continue
		}
		s := st.Servers[name]
		s.Serving = append(s.Serving, id)
		slices.Sort(s.Serving)
		st.Servers[name] = s
	}
	return st, nil
}

// kv is one key read by Status, relative to its prefix.
type kv struct {
	rest        string
	value       []byte
	create, mod int64
}
