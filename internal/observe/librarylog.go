package observe

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LibraryLog routes a library's process-wide printf-style logger (go-redis
// prints plain text on stderr by default) into the JSON operational log,
// at most one line per Every: a Redis that is down fails the dial of every
// request, and one line per request would flood the log. The lines in
// between are counted and reported with the next one.
type LibraryLog struct {
	Log    *slog.Logger
	Source string // "redis"
	Every  time.Duration
	Now    func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Printf implements go-redis's internal.Logging.
func (l *LibraryLog) Printf(_ context.Context, format string, v ...any) {
	now := l.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.Every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	l.Log.Warn(l.Source+": "+msg, "source", l.Source, "suppressed_since_last", n)
}
