package validate

import (
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Compile builds a route's input checks from its validate section. A
// route with an OpenAPI document (withSpec) gets the JSON syntax checks
// (one value, valid UTF-8, no duplicate member names) even without a
// validate section: the document's validator would judge the last copy
// of a duplicated member.
func Compile(v *config.Validate, withSpec bool) pipeline.Middleware {
	if v == nil {
		if !withSpec {
			return nil
		}
		v = &config.Validate{}
	}
	o := Options{ContentTypes: v.ContentTypes, MaxHeaders: v.MaxHeaders, MaxQueryParams: v.MaxQueryParams, JSON: withSpec}
	if j := v.JSON; j != nil {
		o.JSON, o.MaxDepth, o.MaxElements, o.MaxStringLength = true, j.MaxDepth, j.MaxElements, j.MaxStringLength
		o.AllowDuplicateNames = j.AllowDuplicateNames
	}
	if m := v.Multipart; m != nil {
		o.Multipart, o.MaxParts, o.MaxPartBytes, o.PartTypes = true, m.MaxParts, int64(m.MaxPartBytes), m.FileTypes
	}
	return New(o)
}
