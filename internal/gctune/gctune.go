// Package gctune paces the garbage collector by what it scans. Go's GOGC
// is a ratio: between two collections the heap may grow by GOGC percent
// of what the last one scanned (the live heap, goroutine stacks and
// globals). A gateway's live heap is small when idle (its plan, pools
// and caches) and grows with the connections it holds (buffers,
// stacks); a high ratio halves collection work on the small heap at the
// cost of a few MB, but multiplies the large one (at 400%, 1,000 busy
// connections holding 60 MiB could grow the heap by 240 MiB). The
// tuner keeps the headroom — what may be allocated between two
// collections — near a fixed budget instead: the ratio is the budget
// divided by what was scanned, within [Min, Max] percent.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Pace is the tuner's policy.
type Pace struct {
	Headroom uint64 // bytes that may be allocated between collections
	Min, Max int    // bounds of the ratio, in percent
}

// Default gives a small heap 400% (up to 8 MiB scanned: an idle gateway,
// or one serving a few hundred connections) and never less than 100%
// (Go's own default) to a large one, with 32 MiB of headroom between.
var Default = Pace{Headroom: 32 << 20, Min: 100, Max: 400}

// Percent is the ratio when the last collection scanned scanned bytes.
func (p Pace) Percent(scanned uint64) int {
	if scanned == 0 {
		return p.Max
	}
	pct := p.Headroom * 100 / scanned
	switch {
	case pct < uint64(p.Min):
		return p.Min
	case pct > uint64(p.Max):
		return p.Max
	}
	return int(pct)
}

// Tuner adjusts the ratio after every collection until stopped.
type Tuner struct {
	pace    Pace
	stopped atomic.Bool
	current atomic.Int64 // the ratio set last
	sample  []metrics.Sample
}

// Start sets the ratio for the current live heap and adjusts it after
// each collection (a finalizer re-armed each cycle: the runtime's own
// signal that a collection finished, with no goroutine or timer).
func Start(p Pace) *Tuner {
	t := &Tuner{pace: p, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	t.adjust()
	t.arm()
	return t
}

// Stop ends the adjustments; the ratio set last stays.
func (t *Tuner) Stop() { t.stopped.Store(true) }

// Percent is the ratio the tuner set last.
func (t *Tuner) Percent() int { return int(t.current.Load()) }

// arm lets the next collection call adjust: an unreachable object whose
// finalizer runs once the collection that found it dead completes.
func (t *Tuner) arm() {
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	})
}

// adjust sets the ratio for what the last collection scanned when it
// moves by more than a tenth (each change recomputes the pacer's goal).
func (t *Tuner) adjust() {
	metrics.Read(t.sample)
	var scanned uint64
	for _, s := range t.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			scanned += s.Value.Uint64()
		}
	}
	pct := t.pace.Percent(scanned)
	cur := t.current.Load()
	if cur != 0 && abs(int64(pct)-cur)*10 < cur {
		return
	}
	t.current.Store(int64(pct))
	debug.SetGCPercent(pct)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
