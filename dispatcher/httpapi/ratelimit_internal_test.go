package httpapi

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterDropsOnlyRefilledBuckets(t *testing.T) {
	l := newLimiter(1) // burst 2, refilled in 2s
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 100 {
		if tok, _ := l.reserve(fmt.Sprint("idle-", i), t0); tok == nil {
			t.Fatalf("first event of account %d refused", i)
		}
	}
	// busy spends its whole burst just before the sweep.
	tSweep := t0.Add(sweepEvery)
	for range 2 {
		if tok, _ := l.reserve("busy", tSweep.Add(-time.Millisecond)); tok == nil {
			t.Fatal("busy's burst refused")
		}
	}
	if _, wait := l.reserve("busy", tSweep); wait <= 0 {
		t.Fatal("busy's third event passed")
	}
	if n := l.size(); n != 1 {
		t.Errorf("%d buckets after the sweep, want only busy's", n)
	}
	// Dropping a full bucket changes nothing for its account.
	for range 2 {
		if tok, _ := l.reserve("idle-1", tSweep); tok == nil {
			t.Fatal("a swept account lost its burst")
		}
	}
	if _, wait := l.reserve("idle-1", tSweep); wait != time.Second {
		t.Errorf("wait %v, want 1s", wait)
	}
}
