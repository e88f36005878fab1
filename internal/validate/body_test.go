package validate

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// TestBodyLimitDecidesForLaterStages: a later stage that reads past the
// limit and makes something else of the read error (a schema failure, an
// internal error) is overruled: the decision is 413.
func TestBodyLimitDecidesForLaterStages(t *testing.T) {
	for _, stageErr := range []error{errors.New("validator: unexpected EOF"), pipeline.Deny(400, "validate.schema", "bad body")} {
		h := BodyLimit(16)(func(w http.ResponseWriter, r *http.Request) error {
			_, _ = io.ReadAll(r.Body)
			return stageErr
		})
		r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 17)))
		r.ContentLength = -1 // chunked: the limit is crossed while reading
		r = r.WithContext(pipeline.WithScope(r.Context(), &pipeline.Scope{}))
		if pe := pipeline.AsError(h(httptest.NewRecorder(), r)); pe.Status != 413 || pe.Code != pipeline.CodeBodyTooLarge {
			t.Errorf("stage error %v: decision %d %s, want 413 %s", stageErr, pe.Status, pe.Code, pipeline.CodeBodyTooLarge)
		}
	}
}
