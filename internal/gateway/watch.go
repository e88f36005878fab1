package gateway

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long a config file must stay unchanged (no event, same
// size and modification time) before it is reloaded: an editor or a tool
// writing the file in place, in pieces, is given time to finish.
const settle = 500 * time.Millisecond

// Watch calls reload when the file at path changes, until ctx ends. It
// watches the file's directory, so that editors that save by renaming and
// Kubernetes ConfigMap symlink swaps are seen, and it waits for the file
// to settle (no event for a while, then the same size and modification
// time as when the last event came) before one reload.
func Watch(ctx context.Context, path string, log *slog.Logger, reload func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		w.Close()
		return err
	}
	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		var timer *time.Timer
		var seen fileState
		fire := make(chan struct{}, 1)
		arm := func() {
			if timer != nil {
				timer.Stop()
			}
			timer = time.AfterFunc(settle, func() {
				select {
				case fire <- struct{}{}:
				default:
				}
			})
		}
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Clean(ev.Name)
				// ConfigMaps swap a "..data" symlink; any change in the
				// directory may then change the file.
				if name != abs && filepath.Base(name) != "..data" {
					continue
				}
				seen = stateOf(abs)
				arm()
			case <-fire:
				if now := stateOf(abs); now != seen {
					seen = now // still being written, without events (some filesystems)
					arm()
					continue
				}
				reload()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch", "error", err.Error())
			}
		}
	}()
	return nil
}

// fileState is what tells a file still being written from a settled one.
type fileState struct {
	size int64
	mod  time.Time
	ok   bool
}

func stateOf(path string) fileState {
	st, err := os.Stat(path)
	if err != nil {
		return fileState{}
	}
	return fileState{size: st.Size(), mod: st.ModTime(), ok: true}
}
