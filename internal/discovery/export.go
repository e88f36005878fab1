package discovery

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
)

// learnedOp is an operation under its final template: the operations of
// every key the template joins, merged.
type learnedOp struct {
	route, method, template string
	kinds                   map[string]string // path parameter name → segment kind
	op                      *opModel
}

// operations lists the learned operations of every route under their
// final templates (the caller holds l.mu).
func (l *Learner) operations() []learnedOp {
	var out []learnedOp
	for route, rm := range l.routes {
		var keys []string
		for _, op := range rm.ops {
			keys = append(keys, op.Key)
		}
		final := templates(keys)
		joined := map[string]*learnedOp{}
		var order []string
		for _, op := range rm.ops {
			t := final[op.Key]
			k := op.Method + " " + t
			if lo := joined[k]; lo != nil {
				lo.op.merge(op)
				continue
			}
			cp := *op
			cp.Statuses, cp.Query, cp.ReqTypes, cp.Auth = map[int]*respModel{}, map[string]*queryParam{}, map[string]int64{}, map[string]int64{}
			cp.ReqBody, cp.Count = nil, 0
			cp.merge(op)
			joined[k] = &learnedOp{route: route, method: op.Method, template: t, kinds: paramKinds(op.Key, t), op: &cp}
			order = append(order, k)
		}
		sort.Strings(order)
		for _, k := range order {
			out = append(out, *joined[k])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].template+out[i].method < out[j].template+out[j].method })
	return out
}

// paramKinds pairs a template's parameter names with the kinds of the
// key's segments.
func paramKinds(key, template string) map[string]string {
	ks, ts := strings.Split(strings.Trim(key, "/"), "/"), strings.Split(strings.Trim(template, "/"), "/")
	out := map[string]string{}
	for i := range ts {
		if i < len(ks) && strings.HasPrefix(ts[i], "{") {
			out[strings.Trim(ts[i], "{}")] = strings.Trim(ks[i], "{}")
		}
	}
	return out
}

// Draft is the OpenAPI 3.1 document (JSON) of what was seen: every
// operation under its template, with its parameters, bodies, answers and
// how often each was seen (x-rampart-observed).
func (l *Learner) Draft() []byte {
	l.mu.Lock()
	ops := l.operations()
	paths := map[string]any{}
	for _, lo := range ops {
		item, _ := paths[lo.template].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[lo.template] = item
		}
		item[strings.ToLower(lo.method)] = lo.document()
	}
	l.mu.Unlock()
	doc := map[string]any{"openapi": "3.1.0",
		"info":  map[string]any{"title": "Discovered API (draft)", "version": "0", "description": "Learned by Rampart from the traffic it forwarded; review before publishing."},
		"paths": paths}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}

// document is the OpenAPI operation of a learned operation.
func (lo learnedOp) document() map[string]any {
	op := lo.op
	var params []any
	for _, seg := range strings.Split(strings.Trim(lo.template, "/"), "/") {
		if strings.HasPrefix(seg, "{") {
			name := strings.Trim(seg, "{}")
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": paramSchema(lo.kinds[name])})
		}
	}
	var names []string
	for name := range op.Query {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		q := op.Query[name]
		params = append(params, map[string]any{"name": name, "in": "query", "required": q.Count == op.Count && op.Count > 1, "schema": q.Shape.schema()})
	}
	out := map[string]any{"operationId": operationID(lo.method, lo.template), "responses": lo.responses(),
		"x-rampart-observed": map[string]any{"route": lo.route, "count": op.Count, "first": op.First.UTC().Format(time.RFC3339),
			"last": op.Last.UTC().Format(time.RFC3339), "auth": op.Auth}}
	if len(params) > 0 {
		out["parameters"] = params
	}
	if len(op.ReqTypes) > 0 {
		content := map[string]any{}
		for ct := range op.ReqTypes {
			media := map[string]any{}
			if op.ReqBody != nil && (ct == "application/json" || strings.HasSuffix(ct, "+json")) {
				media["schema"] = op.ReqBody.schema()
			}
			content[ct] = media
		}
		out["requestBody"] = map[string]any{"content": content}
	}
	return out
}

func (lo learnedOp) responses() map[string]any {
	out := map[string]any{}
	for st, r := range lo.op.Statuses {
		resp := map[string]any{"description": "Seen " + strconv.FormatInt(r.Count, 10) + " times."}
		if len(r.Types) > 0 {
			content := map[string]any{}
			for ct := range r.Types {
				media := map[string]any{}
				if r.Body != nil && (ct == "application/json" || strings.HasSuffix(ct, "+json")) {
					media["schema"] = r.Body.schema()
				}
				content[ct] = media
			}
			resp["content"] = content
		}
		out[strconv.Itoa(st)] = resp
	}
	return out
}

// operationID names an operation: get_users_userId.
func operationID(method, template string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(strings.Trim(template, "/"), "/") {
		seg = strings.Trim(seg, "{}")
		if seg != "" {
			b.WriteString("_" + camelCase(seg))
		}
	}
	return b.String()
}
