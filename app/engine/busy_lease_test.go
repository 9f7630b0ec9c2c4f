package engine

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestBusyLeaseEndsItselfAfterTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes atomic.Int32
		b := NewBusy(SystemClock{}, func(bool) { changes.Add(1) })
		if _, err := b.Start("turn-1", "claude", time.Minute); err != nil {
			t.Fatal(err)
		}
		if !b.Active("any") {
			t.Fatal("not busy after Start")
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if !b.Active("any") {
			t.Fatal("lease ended before its TTL")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if b.Active("any") {
			t.Fatal("lease outlived its TTL")
		}
		if got := changes.Load(); got != 2 {
			t.Errorf("onChange called %d times, want 2 (start, expiry)", got)
		}
	})
}

func TestBusyRenewalExtendsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBusy(SystemClock{}, nil)
		b.Start("x", "", time.Minute)
		time.Sleep(50 * time.Second)
		b.Start("x", "", time.Minute) // renew: the first timer must not end the renewed lease
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if !b.Active("s") {
			t.Fatal("renewed lease ended by the old timer")
		}
		if n := len(b.Leases()); n != 1 {
			t.Fatalf("%d leases, want 1", n)
		}
		time.Sleep(41 * time.Second)
		synctest.Wait()
		if b.Active("s") {
			t.Fatal("renewed lease did not expire")
		}
	})
}

func TestBusyInflightRequestsArePerServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes atomic.Int32
		b := NewBusy(SystemClock{}, func(bool) { changes.Add(1) })
		r1 := b.Acquire("a")
		r2 := b.Acquire("a")
		if !b.Active("a") || b.Active("b") {
			t.Fatal("in-flight request should make only its own server busy")
		}
		r1()
		r1() // releasing twice must not undercount
		if !b.Active("a") {
			t.Fatal("one request still in flight")
		}
		r2()
		if b.Active("a") {
			t.Fatal("still busy after both requests completed")
		}
		if got := changes.Load(); got != 1 {
			t.Errorf("onChange called %d times, want 1 (only when the last request completed)", got)
		}
	})
}

func TestBusyStartValidatesAndCaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBusy(SystemClock{}, nil)
		if _, err := b.Start("", "", time.Minute); err == nil {
			t.Error("empty id accepted")
		}
		if _, err := b.Start("x", "", -time.Second); err == nil {
			t.Error("negative ttl accepted")
		}
		l, _ := b.Start("d", "", 0)
		if l.TTL != DefaultLeaseTTL {
			t.Errorf("default ttl = %v", l.TTL)
		}
		l, _ = b.Start("c", "", 100*time.Hour)
		if l.TTL != MaxLeaseTTL {
			t.Errorf("capped ttl = %v", l.TTL)
		}
		if !b.End("d") || b.End("d") {
			t.Error("End should report the lease once")
		}
		b.End("c")
	})
}
