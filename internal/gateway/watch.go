package gateway

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls reload when the file at path changes, until ctx ends. It
// watches the file's directory, so that editors that save by renaming and
// Kubernetes ConfigMap symlink swaps are seen, and it debounces bursts of
// events into one reload.
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
		fire := make(chan struct{}, 1)
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
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(150*time.Millisecond, func() {
					select {
					case fire <- struct{}{}:
					default:
					}
				})
			case <-fire:
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
