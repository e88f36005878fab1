package server

import (
	"bytes"
	"math"
	"sync"
	"sync/atomic"
)

// framing is a strict HTTP/1.1 message-framing checker that reads a
// connection's bytes as Go's server reads them. Go's parser is lenient where
// RFC 9112 allows it to be (it folds obs-fold lines, accepts bare LF line
// endings, lets Transfer-Encoding override Content-Length, ignores
// Transfer-Encoding on HTTP/1.0) and by the time a handler runs that
// evidence is gone. Each of those leniencies is a request-smuggling
// primitive against a back end or front end that parses differently, so
// Rampart refuses them: the checker records the index of the first request
// on the connection whose framing is ambiguous, and the gateway answers that
// request with 400 and closes the connection.
//
// It follows message boundaries itself (Content-Length bodies, chunked
// bodies and trailers) so that pipelined requests are checked too. After
// the first anomaly, or after a request asking for a protocol upgrade, it
// stops reading the stream.
type framing struct {
	state    int
	line     []byte
	lineLen  int
	prevCR   bool
	index    int // request whose bytes are being read
	gotStart bool

	// Per-message header facts.
	http10   bool
	absForm  bool
	clCount  int
	clValue  []byte
	teCount  int
	teValue  []byte
	upgrade  bool
	connect  bool
	host     []byte
	remain   int64
	chunkLen int

	bad    atomic.Int64 // index of the first bad request; MaxInt64 if none
	mu     sync.Mutex
	reason string
	hosts  map[int]string // Host header of absolute-form requests
}

const (
	stHead = iota
	stBody
	stChunkSize
	stChunkData
	stChunkCR
	stChunkLF
	stTrailer
	stPass
	stDead
)

// keepLine is how much of each line is kept: enough for the header names
// and values the checker reads; the server enforces the real size limit.
const keepLine = 1024

func newFraming() *framing {
	f := &framing{line: make([]byte, 0, 256)}
	f.bad.Store(math.MaxInt64)
	return f
}

// verdict returns the reason request idx must be refused, or "".
func (f *framing) verdict(idx int) string {
	if int64(idx) < f.bad.Load() {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reason
}

// hostHeader returns the Host header of request idx if its target was in
// absolute form (Go drops the header in that case).
func (f *framing) hostHeader(idx int) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[idx]
	return h, ok
}

func (f *framing) fail(reason string) {
	f.mu.Lock()
	if f.bad.Load() == math.MaxInt64 {
		f.reason = reason
		f.bad.Store(int64(f.index))
	}
	f.mu.Unlock()
	f.state = stDead
}

// feed consumes bytes the server has read from the connection.
func (f *framing) feed(p []byte) {
	for i := 0; i < len(p); {
		switch f.state {
		case stDead, stPass:
			return
		case stBody, stChunkData:
			n := int64(len(p) - i)
			if n > f.remain {
				n = f.remain
			}
			f.remain -= n
			i += int(n)
			if f.remain == 0 {
				if f.state == stBody {
					f.endMessage()
				} else {
					f.state = stChunkCR
				}
			}
		case stChunkCR:
			if p[i] != '\r' {
				f.fail("chunk data not followed by CRLF")
				return
			}
			f.state = stChunkLF
			i++
		case stChunkLF:
			if p[i] != '\n' {
				f.fail("chunk data not followed by CRLF")
				return
			}
			f.state = stChunkSize
			i++
		default: // line-oriented states
			c := p[i]
			i++
			if c == '\n' {
				if !f.prevCR {
					f.fail("bare LF line ending")
					return
				}
				f.prevCR = false
				f.onLine()
				f.line = f.line[:0]
				f.lineLen = 0
				continue
			}
			if f.prevCR {
				f.fail("bare CR in line")
				return
			}
			if c == '\r' {
				f.prevCR = true
				continue
			}
			f.lineLen++
			if len(f.line) < keepLine {
				f.line = append(f.line, c)
			}
		}
	}
}

func (f *framing) onLine() {
	line := f.line
	switch f.state {
	case stHead:
		f.onHeadLine(line)
	case stChunkSize:
		f.onChunkSize(line)
	case stTrailer:
		if f.lineLen == 0 {
			f.endMessage()
		} else if line[0] == ' ' || line[0] == '\t' {
			f.fail("obs-fold in trailer")
		}
	}
}

func (f *framing) onHeadLine(line []byte) {
	if !f.gotStart {
		if f.lineLen == 0 {
			return // RFC 9112 §2.2: ignore empty lines before the request line
		}
		f.gotStart = true
		f.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
		sp := bytes.IndexByte(line, ' ')
		if sp > 0 {
			f.connect = string(line[:sp]) == "CONNECT"
			target := line[sp+1:]
			f.absForm = len(target) > 0 && target[0] != '/' && target[0] != '*'
		}
		return
	}
	if f.lineLen == 0 {
		f.endHead()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		f.fail("obs-fold (folded header line)")
		return
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return // the server rejects it
	}
	name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
	switch {
	case bytes.EqualFold(name, []byte("content-length")):
		f.clCount++
		f.clValue = append(f.clValue[:0], value...)
	case bytes.EqualFold(name, []byte("transfer-encoding")):
		f.teCount++
		f.teValue = append(f.teValue[:0], value...)
	case bytes.EqualFold(name, []byte("upgrade")):
		f.upgrade = true
	case bytes.EqualFold(name, []byte("host")):
		f.host = append(f.host[:0], value...)
	}
}

func (f *framing) endHead() {
	switch {
	case f.teCount > 0 && f.clCount > 0:
		f.fail("both Content-Length and Transfer-Encoding")
		return
	case f.clCount > 1:
		f.fail("more than one Content-Length")
		return
	case f.teCount > 0 && f.http10:
		f.fail("Transfer-Encoding on HTTP/1.0")
		return
	case f.teCount > 1 || f.teCount == 1 && !bytes.EqualFold(f.teValue, []byte("chunked")):
		f.fail("unsupported Transfer-Encoding")
		return
	}
	if f.absForm {
		f.mu.Lock()
		if f.hosts == nil {
			f.hosts = map[int]string{}
		}
		f.hosts[f.index] = string(f.host)
		f.mu.Unlock()
	}
	switch {
	case f.teCount == 1:
		f.state = stChunkSize
	case f.clCount == 1:
		n, ok := parseDecimal(f.clValue)
		if !ok {
			f.fail("invalid Content-Length")
			return
		}
		if n == 0 {
			f.endMessage()
			return
		}
		f.remain = n
		f.state = stBody
	default:
		f.endMessage()
	}
	if f.upgrade || f.connect {
		// The rest of the stream may be another protocol. The gateway
		// closes the connection after any non-101 answer to an upgrade
		// request, so no HTTP request goes unchecked.
		f.state = stPass
	}
}

func (f *framing) onChunkSize(line []byte) {
	if semi := bytes.IndexByte(line, ';'); semi >= 0 {
		line = line[:semi]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 16 {
		f.fail("invalid chunk size")
		return
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			f.fail("invalid chunk size")
			return
		}
		n = n<<4 | int64(d)
	}
	if n < 0 {
		f.fail("invalid chunk size")
		return
	}
	if n == 0 {
		f.state = stTrailer
		return
	}
	f.remain = n
	f.state = stChunkData
}

func (f *framing) endMessage() {
	f.index++
	f.state = stHead
	f.gotStart = false
	f.http10, f.absForm, f.upgrade, f.connect = false, false, false, false
	f.clCount, f.teCount = 0, 0
	f.host = f.host[:0]
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
