// Package fleet lets several authkeeper instances share their grants through an etcd v3 cluster
// (issue 15): one record per server, sealed with a fleet key before it leaves the process, stored with
// compare-and-swap writes; one elected refresher per grant (an etcd election on a lease, so a dead
// instance's ownership expires); watches that tell every other instance when a record changed; and
// request keys through which a follower asks the refresher for a refresh.
//
// Key layout under the prefix (default /authkeeper):
//
//	PREFIX/members/ID       this instance's Member (JSON), on its session lease
//	PREFIX/records/NAME     the record envelope: {"v":1,"writer","written","kid","sealed"}
//	PREFIX/lead/NAME/LEASE  the candidates of NAME's election (concurrency.Election); value: instance ID
//	PREFIX/serving/NAME/ID  instances serving NAME, on their leases
//	PREFIX/ask/NAME/ID      a follower's request for a refresh of NAME, on its lease
//
// etcd sees server names, instance IDs, host names, PIDs and write times, and the sealed records as
// AES-256-GCM ciphertext bound to their key (the additional data), never a token. Whoever holds the
// fleet key and read access to etcd holds the tokens.
//
// One session (lease) per instance carries its membership, its election candidacies, its serving keys
// and its asks. The fleet renews the lease itself and measures how long each renewal is good for from
// the moment it was sent, so Leading turns false before etcd could let the lease expire; when a lease
// cannot be renewed in time (no quorum, no member reachable) the instance gives up every election it
// led, then makes a new session and campaigns again once etcd answers.
package fleet
