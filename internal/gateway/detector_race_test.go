//go:build race

package gateway

// raceDetector: the tests run under the race detector, which makes the
// gateway's own work several times dearer.
const raceDetector = true
