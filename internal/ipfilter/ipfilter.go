// Package ipfilter is the gateway's IP firewall: allow and deny lists of
// addresses and prefixes, from the config and from files re-read when
// they change, checked on the resolved client address before any other
// check of a request.
package ipfilter

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// CodeDenied is the decision code of a refused client address.
const CodeDenied = "access.ip_denied"

// DefaultPoll is how often list files are checked for changes.
const DefaultPoll = 5 * time.Second

// Rules is a compiled access section. Its lists are swapped whole when a
// list file changes; a request reads the lists once.
type Rules struct {
	static lists // from the config itself
	files  []listFile
	cur    atomic.Pointer[lists]
	poll   time.Duration
	stop   chan struct{}
	once   sync.Once
	onErr  func(error)
}

// lists are the allow and deny sets in force.
type lists struct {
	allow, deny set
	allowSet    bool // an allow list exists (even if its files are empty)
}

type listFile struct {
	path  string
	allow bool
	stamp fileStamp
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// Compile builds a, or returns nil when a is nil or empty. onErr receives
// the errors of list files that change into something unreadable (the
// lists in force are kept); nil: ignored.
func Compile(a *config.Access, onErr func(error)) (*Rules, error) {
	if a == nil || len(a.Allow)+len(a.Deny)+len(a.AllowFiles)+len(a.DenyFiles) == 0 {
		return nil, nil
	}
	r := &Rules{poll: DefaultPoll, stop: make(chan struct{}), onErr: onErr}
	r.static.allowSet = len(a.Allow)+len(a.AllowFiles) > 0
	for _, v := range a.Allow {
		if err := r.static.allow.addText(v); err != nil {
			return nil, err
		}
	}
	for _, v := range a.Deny {
		if err := r.static.deny.addText(v); err != nil {
			return nil, err
		}
	}
	for _, f := range a.AllowFiles {
		r.files = append(r.files, listFile{path: f, allow: true})
	}
	for _, f := range a.DenyFiles {
		r.files = append(r.files, listFile{path: f})
	}
	l, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(l)
	return r, nil
}

// load builds the lists from the static entries and every file.
func (r *Rules) load() (*lists, error) {
	l := &lists{allow: r.static.allow.clone(), deny: r.static.deny.clone(), allowSet: r.static.allowSet}
	for i := range r.files {
		f := &r.files[i]
		st, err := os.Stat(f.path)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		dst := &l.deny
		if f.allow {
			dst = &l.allow
		}
		if err := readList(dst, f.path, data); err != nil {
			return nil, err
		}
		f.stamp = fileStamp{size: st.Size(), mtime: st.ModTime()}
	}
	return l, nil
}

// readList adds a file's entries: one address or prefix per line, '#'
// comments, blank lines ignored. An error names the file and line.
func readList(dst *set, path string, data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if err := dst.addText(line); err != nil {
			return fmt.Errorf("%s:%d: %v", path, n, err)
		}
	}
	return sc.Err()
}

// Allowed reports whether the client address passes: not denied, and
// allowed when an allow list exists. An unknown address passes only
// when no allow list exists.
func (r *Rules) Allowed(ip netip.Addr) bool {
	if r == nil {
		return true
	}
	l := r.cur.Load()
	ip = normalise(ip)
	if !ip.IsValid() {
		return !l.allowSet
	}
	if l.deny.contains(ip) {
		return false
	}
	return !l.allowSet || l.allow.contains(ip)
}

// Check is the refusal of a client address that does not pass, or nil.
func (r *Rules) Check(ip netip.Addr) error {
	if r.Allowed(ip) {
		return nil
	}
	return pipeline.Deny(http.StatusForbidden, CodeDenied, "client address not allowed")
}

// Stage is a route's access stage (nil without rules).
func (r *Rules) Stage() pipeline.Middleware {
	if r == nil {
		return nil
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, req *http.Request) error {
			var ip netip.Addr
			if s := pipeline.ScopeOf(req.Context()); s != nil {
				ip = s.ClientIP
			}
			if err := r.Check(ip); err != nil {
				return err
			}
			return next(w, req)
		}
	}
}

// Start starts re-reading list files when they change (idempotent; no
// files: nothing to do).
func (r *Rules) Start() {
	if r == nil || len(r.files) == 0 {
		return
	}
	r.once.Do(func() { go r.watch() })
}

// Close stops the file watcher (nil: no-op).
func (r *Rules) Close() {
	if r == nil {
		return
	}
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
}

// watch polls the list files and swaps in new lists when one changed; a
// file that became unreadable or invalid keeps the lists in force.
func (r *Rules) watch() {
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if !r.changed() {
			continue
		}
		l, err := r.load()
		if err != nil {
			if r.onErr != nil {
				r.onErr(err)
			}
			continue
		}
		r.cur.Store(l)
	}
}

// changed reports whether a list file's size or time changed.
func (r *Rules) changed() bool {
	for _, f := range r.files {
		st, err := os.Stat(f.path)
		if err != nil || st.Size() != f.stamp.size || !st.ModTime().Equal(f.stamp.mtime) {
			return true
		}
	}
	return false
}

// normalise drops a zone and unmaps an IPv4-mapped IPv6 address.
func normalise(ip netip.Addr) netip.Addr {
	return ip.WithZone("").Unmap()
}
