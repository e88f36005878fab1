package acme

import (
	"context"
	"log/slog"

	"go.uber.org/zap/zapcore"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// logCore hands certmagic's zap log records to Rampart's logger, at their
// level, with their fields, tagged with the listener.
type logCore struct {
	l      *slog.Logger
	fields []zapcore.Field
}

func newLogCore(d pipeline.Deps, listener string) zapcore.Core {
	l := d.Log
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &logCore{l: l.With("component", "acme", "listener", listener)}
}

func (c *logCore) Enabled(lvl zapcore.Level) bool {
	return c.l.Enabled(context.Background(), slogLevel(lvl))
}

func (c *logCore) With(f []zapcore.Field) zapcore.Core {
	return &logCore{l: c.l, fields: append(append([]zapcore.Field{}, c.fields...), f...)}
}

func (c *logCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *logCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field{}, c.fields...), fields...) {
		f.AddTo(enc)
	}
	args := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		args = append(args, k, v)
	}
	c.l.Log(context.Background(), slogLevel(e.Level), e.Message, args...)
	return nil
}

func (c *logCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
