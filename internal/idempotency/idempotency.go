// Package idempotency honours the Idempotency-Key request header (IETF
// httpapi draft "The Idempotency-Key HTTP Header Field") on a route: the
// first request with a key is forwarded and its response stored; a retry
// with the same key and the same request gets that response without
// reaching the service; the same key with another request is refused
// (422), and so is a duplicate while the first is still in flight (409).
// Keys are scoped by route and caller (the authenticated identity, else
// the client address), so one caller can never replay another's answer.
package idempotency

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/race"
	"github.com/rampart-gw/rampart/internal/store"
)

// Header is the request header that carries the key.
const Header = "Idempotency-Key"

// ReplayedHeader marks a response served from the store.
const ReplayedHeader = "Idempotent-Replayed"

// Decision codes.
const (
	CodeKeyMissing = "idempotency.key_missing" // 400: the route requires a key
	CodeKeyInvalid = "idempotency.key_invalid" // 400: not a 1-255 character string
	CodeKeyReused  = "idempotency.key_reused"  // 422: the key was used for another request
	CodeConflict   = "idempotency.conflict"    // 409: the first request is in flight, or its response could not be kept
)

// lockTTL bounds an in-flight claim whose gateway died before the answer.
const lockTTL = 2 * time.Minute

// record is what a key holds.
type record struct {
	Fingerprint string // raw SHA-256 of the request
	Done        bool   // answered (else in flight)
	Replayable  bool   // the answer was kept
	Status      int
	Header      http.Header
	Body        []byte
}

// stage is one route's compiled section.
type stage struct {
	route   string
	cfg     config.Idempotency
	store   Store
	sealer  *store.Store // nil: records stored in the clear
	maxBody int64
	count   *Counting // nil: the race detector counts on its own
}

// Counting lets a claim count the request for the route's race detector
// in the same Redis round trip: Key is the detector's key of a request
// (race.Key), Where its Redis key, Window its window. The count travels
// to the detector with the request (race.WithCount).
type Counting struct {
	Key    func(r *http.Request, body []byte) string
	Where  func(key string) string
	Window time.Duration
}

// Stage returns the route's idempotency stage (nil without a section).
// st is the store the section names; seal encrypts stored responses
// (nil: none configured); count, with a Redis store, counts for the race
// detector in the claim's round trip (nil: not).
func Stage(r config.Route, st Store, seal *store.Store, count *Counting) pipeline.Middleware {
	c := r.Idempotency
	if c == nil {
		return nil
	}
	s := &stage{route: r.ID, cfg: *c, store: st, sealer: seal, maxBody: int64(c.MaxResponseBytes)}
	if _, ok := st.(*Redis); ok {
		s.count = count
	}
	return s.middleware
}

func (s *stage) middleware(next pipeline.Handler) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !slices.Contains(s.cfg.Methods, r.Method) {
			return next(w, r)
		}
		raw, present := r.Header[Header]
		if !present {
			if s.cfg.Required {
				return pipeline.Deny(http.StatusBadRequest, CodeKeyMissing, "this operation needs an Idempotency-Key header")
			}
			return next(w, r)
		}
		key, ok := parseKey(raw)
		if !ok {
			return pipeline.Deny(http.StatusBadRequest, CodeKeyInvalid, "Idempotency-Key must be one string of 1 to 255 printable characters")
		}
		body, err := pipeline.ReadBody(r)
		if err != nil {
			return pipeline.BodyReadError(err)
		}
		owner := pipeline.ScopeOf(r.Context()).Caller()
		return s.serve(w, r, next, owner, s.scope(owner, key), fingerprint(r, body), body)
	}
}

// serve claims the key and forwards, or answers from what it holds.
func (s *stage) serve(w http.ResponseWriter, r *http.Request, next pipeline.Handler, owner, key, fp string, body []byte) error {
	ctx := r.Context()
	claim, _ := s.seal(key, (&record{Fingerprint: fp}).marshal())
	claimed, existing, counted, err := s.claim(r, owner, key, claim, body)
	if err != nil {
		return pipeline.DenyErr(http.StatusServiceUnavailable, CodeConflict, "the idempotency store is unavailable", err)
	}
	if !claimed {
		return s.answerExisting(w, key, fp, existing)
	}
	if counted != ctx {
		r = r.WithContext(counted)
	}
	rec := newCapture(w, s.maxBody, fp)
	defer rec.free()
	err = next(rec, r)
	if err != nil || rec.status >= 500 || rec.status == 0 {
		// Not answered by the service, or it failed: a retry may try again.
		_ = s.store.Release(context.WithoutCancel(ctx), key)
		return err
	}
	if b, err := s.seal(key, rec.record()); err == nil {
		_ = s.store.Put(context.WithoutCancel(ctx), owner, key, b, s.cfg.TTL.D())
	}
	return nil
}

// claim claims key for the request; with Counting, it counts the
// request for the race detector in the same round trip and returns the
// request's context marked counted (else r's own).
func (s *stage) claim(r *http.Request, owner, key string, rec, body []byte) (bool, []byte, context.Context, error) {
	ctx := r.Context()
	if s.count == nil {
		claimed, existing, err := s.store.Claim(ctx, owner, key, rec, lockTTL)
		return claimed, existing, ctx, err
	}
	claimed, existing, n, err := s.store.(*Redis).ClaimCounting(ctx, key, rec, lockTTL, s.count.Where(s.count.Key(r, body)), s.count.Window)
	if claimed {
		ctx = race.WithCount(ctx, n)
	}
	return claimed, existing, ctx, err
}

// answerExisting answers a request whose key is taken.
func (s *stage) answerExisting(w http.ResponseWriter, key, fp string, raw []byte) error {
	held, err := s.decode(key, raw)
	switch {
	case err != nil:
		return pipeline.DenyErr(http.StatusConflict, CodeConflict, "this Idempotency-Key cannot be used", err)
	case held.Fingerprint != fp:
		return pipeline.Deny(http.StatusUnprocessableEntity, CodeKeyReused, "this Idempotency-Key was used for a different request")
	case !held.Done:
		e := pipeline.Deny(http.StatusConflict, CodeConflict, "a request with this Idempotency-Key is in progress")
		e.Header = http.Header{"Retry-After": {"1"}}
		return e
	case !held.Replayable:
		return pipeline.Deny(http.StatusConflict, CodeConflict, "the response to this Idempotency-Key was too large to keep")
	}
	h := w.Header()
	for k, v := range held.Header {
		h[k] = v
	}
	h.Set(ReplayedHeader, "true")
	w.WriteHeader(held.Status)
	_, _ = w.Write(held.Body)
	return nil
}

// scope binds a key to the route and the caller.
func (s *stage) scope(owner, key string) string {
	h := pipeline.Digest([]byte(key), s.route, owner)
	return hex.EncodeToString(h[:])
}

// fingerprint identifies the request a key was first used for.
func fingerprint(r *http.Request, body []byte) string {
	h := pipeline.Digest(body, r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"))
	return string(h[:])
}

// parseKey accepts one header line: an sf-string ("...") as the draft
// says, or a bare token as many clients send.
func parseKey(lines []string) (string, bool) {
	if len(lines) != 1 {
		return "", false
	}
	k := strings.TrimSpace(lines[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > 255 {
		return "", false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
			return "", false
		}
	}
	return k, true
}

// seal encrypts an encoded record when the store's records are sealed;
// the record it returns may be b itself.
func (s *stage) seal(key string, b []byte) ([]byte, error) {
	if s.sealer == nil {
		return b, nil
	}
	return s.sealer.Seal("idempotency/"+key, b)
}

func (s *stage) decode(key string, b []byte) (*record, error) {
	if s.sealer != nil {
		var err error
		if b, err = s.sealer.Open("idempotency/"+key, b); err != nil {
			return nil, err
		}
	}
	return unmarshal(b)
}

// recordVersion starts every encoded record; version 1 records (the
// body's length as a uvarint) are still read.
const recordVersion = 2

// Record flags.
const (
	flagDone       = 1
	flagReplayable = 2
)

// marshal encodes a record compactly: its head (appendHead), then the
// body's length (4 bytes) and the body.
func (rec *record) marshal() []byte {
	flags := byte(0)
	if rec.Done {
		flags |= flagDone
	}
	if rec.Replayable {
		flags |= flagReplayable
	}
	b := appendHead(make([]byte, 0, 64+len(rec.Body)), flags, rec.Status, rec.Fingerprint, rec.Header)
	b = binary.BigEndian.AppendUint32(b, uint32(len(rec.Body)))
	return append(b, rec.Body...)
}

// appendHead appends a record's head: version, flags, status, the
// fingerprint and the headers, lengths as uvarints.
func appendHead(b []byte, flags byte, status int, fp string, h http.Header) []byte {
	b = append(b, recordVersion, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(status))
	b = appendString(b, fp)
	b = binary.AppendUvarint(b, uint64(len(h)))
	for k, vs := range h {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return b
}

func appendString(b []byte, p string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(p))), p...)
}

// errRecord is a stored record that does not decode.
var errRecord = errors.New("idempotency record is damaged")

func unmarshal(b []byte) (*record, error) {
	if len(b) < 4 || b[0] != recordVersion && b[0] != 1 {
		return nil, errRecord
	}
	rec := &record{Done: b[1]&flagDone != 0, Replayable: b[1]&flagReplayable != 0, Status: int(binary.BigEndian.Uint16(b[2:4]))}
	r := reader{b: b[4:]}
	rec.Fingerprint = string(r.bytes())
	if n := r.uvarint(); n > 0 && r.err == nil {
		rec.Header = make(http.Header, min(n, 64))
		for range n {
			k := string(r.bytes())
			for range r.uvarint() {
				rec.Header[k] = append(rec.Header[k], string(r.bytes()))
				if r.err != nil {
					return nil, r.err
				}
			}
		}
	}
	if r.err != nil {
		return nil, errRecord
	}
	if b[0] == 1 {
		rec.Body = r.bytes()
	} else if len(r.b) < 4 || uint64(binary.BigEndian.Uint32(r.b)) != uint64(len(r.b)-4) {
		return nil, errRecord
	} else {
		rec.Body = r.b[4:]
		r.b = nil
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errRecord
	}
	return rec, nil
}

// reader reads what marshal wrote; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)) {
		r.err = errRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errRecord
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// capture passes a response through and builds its record as it goes:
// the head when the status is written, then up to max bytes of body.
// Captures and their buffers are pooled: a store copies what it keeps.
type capture struct {
	http.ResponseWriter
	max      int
	fp       string
	rec      []byte
	head     int // the head's length in rec
	status   int
	overflow bool
}

var captures = sync.Pool{New: func() any { return new(capture) }}

// maxPooledRecord bounds the buffer a pooled capture keeps.
const maxPooledRecord = 64 << 10

func newCapture(w http.ResponseWriter, max int64, fp string) *capture {
	c := captures.Get().(*capture)
	*c = capture{ResponseWriter: w, max: int(max), fp: fp, rec: c.rec[:0]}
	return c
}

func (c *capture) free() {
	if cap(c.rec) > maxPooledRecord {
		c.rec = nil
	}
	*c = capture{rec: c.rec[:0]}
	captures.Put(c)
}

func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
		c.rec = appendHead(c.rec[:0], 0, code, c.fp, c.ResponseWriter.Header())
		c.rec = append(c.rec, 0, 0, 0, 0) // the body's length, set by record
		c.head = len(c.rec)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if !c.overflow {
		if len(c.rec)-c.head+len(p) > c.max {
			c.overflow = true
			c.rec = c.rec[:c.head]
		} else {
			c.rec = append(c.rec, p...)
		}
	}
	return c.ResponseWriter.Write(p)
}

// record is the answer's record, done: replayable with its headers and
// body, or (too large to keep) with its status alone. It lives in the
// capture's buffer.
func (c *capture) record() []byte {
	if c.overflow {
		c.rec = appendHead(c.rec[:0], flagDone, c.status, c.fp, nil)
		c.rec = append(c.rec, 0, 0, 0, 0)
		return c.rec
	}
	c.rec[1] = flagDone | flagReplayable
	binary.BigEndian.PutUint32(c.rec[c.head-4:], uint32(len(c.rec)-c.head))
	return c.rec
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }
