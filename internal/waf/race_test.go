//go:build race

package waf

// raceEnabled: the CRS regression suite (sequential, ~4,700 requests
// through Coraza) takes minutes under the race detector and finds nothing
// there; scripts/test.sh runs it without -race.
const raceEnabled = true
