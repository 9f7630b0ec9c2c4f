package fleet

import "slices"

// deleteTracker tells the records watch which deletes were this instance's own. A delete's event can
// arrive before the Delete call returns its revision, so events for a name with a delete in flight
// are held until the call ends.
type deleteTracker struct {
	inflight map[string]int     // name → own deletes in flight
	own      map[string][]int64 // name → revisions of own deletes that ended while others were in flight
	held     map[string][]int64 // name → delete events seen while own deletes were in flight
	done     map[int64]bool     // revisions of own deletes whose events have not arrived yet
}

// deleteStarts records an own delete of name about to be sent.
func (f *Fleet) deleteStarts(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletes.inflight == nil {
		f.deletes = deleteTracker{inflight: map[string]int{}, own: map[string][]int64{},
			held: map[string][]int64{}, done: map[int64]bool{}}
	}
	f.deletes.inflight[name]++
}

// deleteEnds records the end of an own delete of name (rev 0: nothing was deleted) and reports the
// held events that were not this instance's.
func (f *Fleet) deleteEnds(name string, rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &f.deletes
	if rev != 0 {
		d.own[name] = append(d.own[name], rev)
	}
	if d.inflight[name]--; d.inflight[name] > 0 {
		return
	}
	for _, r := range d.held[name] {
		if i := slices.Index(d.own[name], r); i >= 0 {
			d.own[name] = slices.Delete(d.own[name], i, i+1)
			continue
		}
		f.emitChanged(name, r)
	}
	for _, r := range d.own[name] {
		d.done[r] = true
	}
	delete(d.inflight, name)
	delete(d.own, name)
	delete(d.held, name)
}

// deleteSeen is called by the records watch for a delete event of name at rev; it reports whether to
// report it now (it is not known to be this instance's own, and no own delete of name is in flight).
func (f *Fleet) deleteSeen(name string, rev int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &f.deletes
	if d.done[rev] {
		delete(d.done, rev)
		return false
	}
	if d.inflight[name] > 0 {
		d.held[name] = append(d.held[name], rev)
		return false
	}
	return true
}
