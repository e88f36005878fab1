// Package journal is Rampart's tamper-evident record of changes: one
// JSON line per change (config loads and reloads, API keys created,
// startup and shutdown), each carrying the SHA-256 of the line before it,
// with checkpoints that authenticate the chain's head with an HMAC key.
// Editing, deleting, inserting or reordering a record breaks the chain
// where it happened; without the key a checkpoint cannot be forged.
// Records never hold secret values.
package journal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// Record is one line of the journal.
type Record struct {
	Seq   int64             `json:"seq"`
	Time  string            `json:"time"`
	Event string            `json:"event"`
	Actor string            `json:"actor,omitempty"` // who or what caused it: "SIGHUP", "file change", "cli"
	Attrs map[string]string `json:"attrs,omitempty"`
	Prev  string            `json:"prev"`          // SHA-256 of the previous line (hex); zeros for the first
	MAC   string            `json:"mac,omitempty"` // checkpoints: HMAC-SHA256 of this record without mac
}

// EventCheckpoint is the event of a checkpoint record.
const EventCheckpoint = "journal.checkpoint"

var zero = hex.EncodeToString(make([]byte, 32))

// Journal appends to one file. Several processes may append to the same
// file (the gateway and `rampart keys create`): each append locks the
// file and reads its last line, so the chain stays whole.
type Journal struct {
	path  string
	key   []byte // checkpoint key (nil: no checkpoints)
	every int    // a checkpoint after this many records
	now   func() time.Time
	mu    sync.Mutex
	since int
}

// Open opens (or creates, 0600) the journal at path; key signs
// checkpoints (nil: none), written every `every` records and at Close.
func Open(path string, key []byte, every int, now func() time.Time) (*Journal, error) {
	if now == nil {
		now = time.Now
	}
	if every <= 0 {
		every = 100
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	return &Journal{path: path, key: key, every: every, now: now}, nil
}

// Append writes one record; attrs must hold no secret values.
func (j *Journal) Append(event, actor string, attrs map[string]string) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.append(Record{Event: event, Actor: actor, Attrs: attrs}); err != nil {
		return err
	}
	j.since++
	if j.key != nil && j.since >= j.every {
		j.since = 0
		return j.append(Record{Event: EventCheckpoint})
	}
	return nil
}

// Close seals the journal with a checkpoint (when it has a key).
func (j *Journal) Close() error {
	if j == nil || j.key == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.since = 0
	return j.append(Record{Event: EventCheckpoint})
}

// append links r to the file's last line and writes it, under an
// exclusive lock of the file.
func (j *Journal) append(r Record) error {
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	last, err := lastLine(f)
	if err != nil {
		return err
	}
	r.Prev, r.Seq = zero, 1
	if last != nil {
		var prev Record
		if err := json.Unmarshal(last, &prev); err != nil {
			return fmt.Errorf("%s: the last line is not a record: %w", j.path, err)
		}
		sum := sha256.Sum256(last)
		r.Prev, r.Seq = hex.EncodeToString(sum[:]), prev.Seq+1
	}
	r.Time = j.now().UTC().Format(time.RFC3339Nano)
	if r.Event == EventCheckpoint {
		r.MAC = sign(j.key, r)
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return err
	}
	return f.Sync()
}

// sign is the HMAC of a checkpoint record without its mac.
func sign(key []byte, r Record) string {
	r.MAC = ""
	b, _ := json.Marshal(r)
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// lastLine returns the file's last complete line (nil when empty).
func lastLine(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return nil, err
	}
	size := st.Size()
	for window := int64(4096); ; window *= 2 {
		off := max(0, size-window)
		buf := make([]byte, size-off)
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		buf = bytes.TrimRight(buf, "\n")
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return buf[i+1:], nil
		}
		if off == 0 {
			return buf, nil
		}
	}
}

// FromConfig opens the journal of a config section (nil: none).
func FromConfig(c *config.Journal, now func() time.Time) (*Journal, error) {
	if c == nil {
		return nil, nil
	}
	var key []byte
	if c.CheckpointKey.IsSet() {
		key = []byte(c.CheckpointKey.Reveal())
	}
	return Open(c.Output, key, c.CheckpointEvery, now)
}
