package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	p := Pace{Headroom: 64 << 20, Min: 100, Max: 400}
	for _, c := range []struct {
		scanned uint64
		want    int
	}{
		{0, 400}, {4 << 20, 400}, {16 << 20, 400}, {32 << 20, 200}, {47 << 20, 136}, {64 << 20, 100}, {500 << 20, 100},
	} {
		if got := p.Percent(c.scanned); got != c.want {
			t.Errorf("%d MiB scanned: %d%%, want %d%%", c.scanned>>20, got, c.want)
		}
	}
}

// The tuner lowers the ratio when the live heap grows past the budget
// and raises it again when the heap shrinks, after collections.
func TestTunerFollowsLiveHeap(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	tu := Start(Pace{Headroom: 8 << 20, Min: 50, Max: 400})
	defer tu.Stop()
	if got := tu.Percent(); got != 400 {
		t.Fatalf("small heap: %d%%, want 400", got)
	}
	hold := make([][]byte, 0, 64)
	for range 64 {
		hold = append(hold, make([]byte, 1<<20)) // 64 MiB live: 8/64 → 12% → Min 50
	}
	// Within a tenth of the bound: smaller moves are not applied.
	waitFor(t, func() bool { runtime.GC(); return tu.Percent() <= 55 })
	if got, want := debug.SetGCPercent(tu.Percent()), tu.Percent(); got != want {
		t.Errorf("the runtime's ratio is %d%%, want the tuner's %d%%", got, want)
	}
	runtime.KeepAlive(hold)
	clear(hold) // the megabytes die, wherever the slice itself lives
	waitFor(t, func() bool { runtime.GC(); return tu.Percent() == 400 })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the tuner did not follow the live heap")
}
