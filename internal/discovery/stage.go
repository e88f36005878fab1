package discovery

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Stage is the route stage that samples forwarded requests for the
// learner: a sampled request's JSON bodies (request and response, up to
// maxBody each) are copied as they stream and offered to the learner's
// queue after the answer; an unsampled request costs one atomic add. Nil
// when the route does not learn.
func Stage(r config.Route, d *config.Discovery, l *Learner, now func() time.Time) pipeline.Middleware {
	if d == nil || l == nil {
		return nil
	}
	rate := d.Sample
	if rd := r.Discovery; rd != nil {
		if rd.Off {
			return nil
		}
		if rd.Sample != nil {
			rate = *rd.Sample
		}
	}
	if rate <= 0 {
		return nil
	}
	threshold := uint64(rate * 1e6)
	maxBody := int(d.MaxBodyBytes)
	var n atomic.Uint64
	route := r.ID
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, req *http.Request) error {
			// A multiplicative hash of a counter spreads the sampled
			// requests evenly at any rate.
			if (n.Add(1)*11400714819323198485)%1_000_000 >= threshold {
				return next(w, req)
			}
			s := Sample{Route: route, Method: req.Method, Path: pipeline.ScopeOf(req.Context()).Path,
				ReqType: req.Header.Get("Content-Type"), Time: now()}
			if req.URL.RawQuery != "" {
				s.Query = req.URL.Query()
			}
			var reqBody *capture
			if isJSON(s.ReqType) && req.Body != nil && req.Body != http.NoBody {
				reqBody = &capture{limit: maxBody}
				reqBody.size(strconv.FormatInt(req.ContentLength, 10))
				req.Body = &teeBody{ReadCloser: req.Body, c: reqBody}
			}
			cw := &captureWriter{ResponseWriter: w, body: capture{limit: maxBody}}
			err := next(cw, req)
			if id := pipeline.ScopeOf(req.Context()).Identity; id != nil {
				s.Auth = id.Method
			}
			s.Status, s.RespType = cw.status, cw.ctype
			if s.Status == 0 {
				s.Status = http.StatusOK
			}
			if reqBody != nil && !reqBody.over {
				s.ReqBody = reqBody.buf
			}
			if isJSON(s.RespType) && !cw.body.over {
				s.RespBody = cw.body.buf
			}
			if err == nil {
				l.Offer(s)
			}
			return err
		}
	}
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// capture keeps the first bytes of a stream, up to limit; over says the
// stream was longer (its prefix is not parsed).
type capture struct {
	buf   []byte
	limit int
	over  bool
}

// size makes room for a body of the declared length (one allocation).
func (c *capture) size(contentLength string) {
	if n, err := strconv.Atoi(contentLength); err == nil && n > 0 && n <= c.limit && !c.over {
		c.buf = make([]byte, 0, n)
	}
}

func (c *capture) write(p []byte) {
	if c.over {
		return
	}
	if len(c.buf)+len(p) > c.limit {
		c.over, c.buf = true, nil
		return
	}
	c.buf = append(c.buf, p...)
}

// teeBody copies a request body as the proxy reads it.
type teeBody struct {
	io.ReadCloser
	c *capture
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.c.write(p[:n])
	return n, err
}

// captureWriter copies the status, content type and the first bytes of
// a response as they are written; everything passes through unchanged.
type captureWriter struct {
	http.ResponseWriter
	status int
	ctype  string
	body   capture
}

func (w *captureWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.begin(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

// begin records the status and content type; a body that is not JSON is
// not copied.
func (w *captureWriter) begin(status int) {
	w.status, w.ctype = status, w.Header().Get("Content-Type")
	w.body.over = !isJSON(w.ctype)
	w.body.size(w.Header().Get("Content-Length"))
}

func (w *captureWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.begin(http.StatusOK)
	}
	w.body.write(p)
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
