package gateway

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long a config file must stay unchanged (no event, same
// size and modification time) before it is reloaded: an editor or a tool
// writing the file in place, in pieces, is given time to finish.
const settle = 500 * time.Millisecond

// Watch calls reload when one of the files changes, until ctx ends. files
// returns the files to watch (the config file and the files it names
// that a reload re-reads, such as certificates); it is asked again after
// each reload. Watch watches each file's directory, so that editors that
// save by renaming and Kubernetes ConfigMap and Secret symlink swaps are
// seen, and it waits for the files to settle (no event for a while, then
// the same size and modification time as when the last event came)
// before one reload.
func Watch(ctx context.Context, files func() []string, log *slog.Logger, reload func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	ws := &watchSet{w: w, dirs: map[string]bool{}, files: map[string]bool{}}
	if err := ws.add(files()); err != nil {
		w.Close()
		return err
	}
	go ws.run(ctx, files, log, reload)
	return nil
}

// watchSet is the watched directories and the files of interest in them.
type watchSet struct {
	w     *fsnotify.Watcher
	dirs  map[string]bool // watched
	files map[string]bool // absolute paths
}

func (ws *watchSet) add(files []string) error {
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return err
		}
		ws.files[abs] = true
		if dir := filepath.Dir(abs); !ws.dirs[dir] {
			if err := ws.w.Add(dir); err != nil {
				return err
			}
			ws.dirs[dir] = true
		}
	}
	return nil
}

// relevant reports an event that may change a watched file: the file
// itself, or a "..data" symlink swap (ConfigMaps and Secrets) in a
// watched directory.
func (ws *watchSet) relevant(name string) bool {
	name = filepath.Clean(name)
	return ws.files[name] || filepath.Base(name) == "..data"
}

// states is the settle state of every watched file.
func (ws *watchSet) states() map[string]fileState {
	out := make(map[string]fileState, len(ws.files))
	for f := range ws.files {
		out[f] = stateOf(f)
	}
	return out
}

func (ws *watchSet) run(ctx context.Context, files func() []string, log *slog.Logger, reload func()) {
	defer ws.w.Close()
	var timer *time.Timer
	var seen map[string]fileState
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
		case ev, ok := <-ws.w.Events:
			if !ok {
				return
			}
			if ws.relevant(ev.Name) {
				seen = ws.states()
				arm()
			}
		case <-fire:
			if now := ws.states(); !maps.Equal(now, seen) {
				seen = now // still being written, without events (some filesystems)
				arm()
				continue
			}
			reload()
			if err := ws.add(files()); err != nil {
				log.Warn("config watch: a file named by the config cannot be watched", "error", err.Error())
			}
		case err, ok := <-ws.w.Errors:
			if !ok {
				return
			}
			log.Warn("config watch", "error", err.Error())
		}
	}
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
