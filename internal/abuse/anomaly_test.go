package abuse

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestBaselineFlagsOutliers: after learning a population of clients at
// about 20 requests per interval with few errors, a client sending 400,
// one whose answers are mostly 401, and one reading half a MiB per
// answer at a usual rate stand out; normal clients do not.
func TestBaselineFlagsOutliers(t *testing.T) {
	b := NewBaseline(10*time.Second, 6, 20, 0)
	now := time.Unix(0, 0)
	ip := func(i int) netip.Prefix { return netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/32", i)) }
	var flagged map[netip.Prefix]string
	for interval := 0; interval < 8; interval++ {
		for c := 1; c <= 50; c++ {
			n := 15 + (c*7+interval*3)%11 // 15..25
			for k := 0; k < n; k++ {
				status := 200
				if k == 0 && c%5 == 0 {
					status = 404
				}
				if out := b.Add(ip(c), status, 2048, now); out != nil {
					flagged = out
				}
			}
		}
		if interval == 6 {
			for k := 0; k < 400; k++ {
				b.Add(ip(200), 200, 2048, now) // flood
			}
			for k := 0; k < 30; k++ {
				b.Add(ip(201), 401, 100, now) // guessing passwords
			}
			for k := 0; k < 22; k++ {
				b.Add(ip(202), 200, 512<<10, now) // a usual rate, but half a MiB each: a scraper of large objects
			}
		}
		if len(flagged) > 0 && interval < 7 {
			t.Fatalf("interval %d: normal clients flagged: %v", interval, flagged)
		}
		now = now.Add(10 * time.Second)
	}
	b.Add(ip(1), 200, 2048, now) // closes interval 7
	if flagged[ip(200)] != "request_rate" || flagged[ip(201)] != "error_ratio" || flagged[ip(202)] != "bytes_read" {
		t.Fatalf("outliers: %v", flagged)
	}
	if len(flagged) != 3 {
		t.Fatalf("normal clients flagged too: %v", flagged)
	}
}
