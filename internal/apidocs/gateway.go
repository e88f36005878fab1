package apidocs

import (
	"regexp"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
)

// gatewayResponse is an answer of the gateway itself, with the codes it
// carries (docs/security.md lists each; a test keeps the two in step).
type gatewayResponse struct {
	status, name, description string
	codes                     []string
	applies                   func(r config.Route) bool
}

// gatewayResponses are the gateway's own answers an operation can get,
// each added where the route's config can produce it.
var gatewayResponses = []gatewayResponse{
	{"400", "GatewayBadRequest", "The gateway refused a malformed or invalid request.",
		[]string{"request.bad_path", "request.bad_query", "request.bad_host", "request.framing", "request.body_error",
			"validate.json", "validate.schema", "validate.limits", "validate.multipart", "validate.decision_field"}, always},
	{"401", "GatewayUnauthorized", "No valid credentials (a WWW-Authenticate challenge says which).",
		[]string{"authn.unauthorized"}, func(r config.Route) bool { return !r.Public }},
	{"403", "GatewayForbidden", "The caller or the request is not allowed.",
		[]string{"authz.denied", "access.ip_denied", "abuse.banned", "abuse.account_locked", "waf.sqli", "waf.xss", "waf.lfi",
			"waf.rce", "waf.protocol", "waf.limits", "ratelimit.key_missing", "cors.preflight_refused"}, always},
	{"413", "GatewayPayloadTooLarge", "The request body is larger than the route allows.",
		[]string{"request.body_too_large"}, always},
	{"415", "GatewayUnsupportedMediaType", "The request's content type is not one the route accepts.",
		[]string{"validate.content_type"}, func(r config.Route) bool { return r.Validate != nil || r.OpenAPI != nil }},
	{"429", "GatewayTooManyRequests", "A rate limit, quota or concurrency limit was reached; retry after Retry-After seconds.",
		[]string{"ratelimit.exceeded", "quota.exceeded", "ratelimit.concurrency", "abuse.throttled"}, limited},
	{"502", "GatewayBadGateway", "The service could not be reached or answered badly.",
		[]string{"upstream.unreachable", "upstream.identity", "upstream.bad_response", "validate.response"}, always},
	{"503", "GatewayUnavailable", "The service is unavailable (no healthy target, circuit open, overloaded, shutting down).",
		[]string{"upstream.unavailable", "upstream.circuit_open", "upstream.overloaded", "ratelimit.unavailable", "gateway.shutdown"}, always},
	{"504", "GatewayTimeout", "The service did not answer in time.",
		[]string{"upstream.timeout"}, always},
}

func always(config.Route) bool { return true }

func limited(r config.Route) bool {
	return len(r.RateLimits) > 0 || len(r.Quotas) > 0 || r.MaxInFlight > 0
}

// addGatewayResponses adds the gateway's answers the route can give, as
// references, where the operation does not document that status itself.
func (b *builder) addGatewayResponses(op obj, r config.Route) {
	resps, _ := op["responses"].(obj)
	if resps == nil {
		resps = obj{}
		op["responses"] = resps
	}
	for _, g := range gatewayResponses {
		if _, own := resps[g.status]; !own && g.applies(r) {
			resps[g.status] = obj{"$ref": "#/components/responses/" + g.name}
		}
	}
}

// gatewayComponents adds the Problem schema, the rate-limit headers and
// the gateway's responses that operations refer to.
func (b *builder) gatewayComponents() {
	used := map[string]bool{}
	for _, item := range b.paths {
		for _, op := range item.(obj) {
			if o, ok := op.(obj); ok {
				for _, resp := range asObj(o["responses"]) {
					if ref, ok := asObj(resp)["$ref"].(string); ok {
						used[strings.TrimPrefix(ref, "#/components/responses/")] = true
					}
				}
			}
		}
	}
	responses := asObj(b.components["responses"])
	if responses == nil {
		responses = obj{}
	}
	for _, g := range gatewayResponses {
		if !used[g.name] {
			continue
		}
		var codes []any
		for _, c := range g.codes {
			codes = append(codes, c)
		}
		resp := obj{"description": g.description, "content": obj{"application/problem+json": obj{"schema": obj{
			"allOf": []any{obj{"$ref": "#/components/schemas/GatewayProblem"}, obj{"properties": obj{"code": obj{"enum": codes}}}},
		}}}}
		if g.status == "429" {
			resp["headers"] = obj{
				"Retry-After":      obj{"description": "Seconds until a request may succeed.", "schema": obj{"type": "integer", "minimum": 0}},
				"RateLimit":        obj{"description": "The remaining quota of the limit that applied (IETF RateLimit fields).", "schema": obj{"type": "string"}},
				"RateLimit-Policy": obj{"description": "The limit that applied.", "schema": obj{"type": "string"}},
			}
		}
		responses[g.name] = resp
	}
	if len(used) > 0 {
		b.components["responses"] = responses
		schemas := asObj(b.components["schemas"])
		if schemas == nil {
			schemas = obj{}
			b.components["schemas"] = schemas
		}
		schemas["GatewayProblem"] = problemSchema()
	}
}

func asObj(v any) obj {
	o, _ := v.(obj)
	return o
}

// problemSchema is the RFC 9457 problem the gateway answers with.
func problemSchema() obj {
	str := func(desc string) obj { return obj{"type": "string", "description": desc} }
	return obj{
		"type": "object", "description": "An RFC 9457 problem answered by the gateway itself.",
		"required": []any{"type", "title", "status", "code", "request_id"},
		"properties": obj{
			"type": str("about:blank"), "title": str("The HTTP status text."),
			"status":     obj{"type": "integer"},
			"code":       str("A stable code: what refused the request."),
			"detail":     str("What was wrong, without internal details."),
			"request_id": str("The request id, also in the X-Request-Id header and the gateway's logs."),
		},
	}
}

var templateParam = regexp.MustCompile(`\{([^}/]+)\}`)

// skeleton documents a visible route that has no document: its path (a
// prefix route as the prefix, with a description), its methods, its path
// parameters, the gateway's security and answers.
func (b *builder) skeleton(r config.Route) {
	path, desc := r.Path, "Forwarded to the service; the service's answers are not documented here."
	if path == "" {
		path = strings.TrimSuffix(r.Prefix, "/")
		if path == "" {
			path = "/"
		}
		desc = "This path and every path below it are forwarded to the service; the service's answers are not documented here."
	}
	methods := r.Methods
	if len(methods) == 0 {
		methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	}
	var params []any
	for _, m := range templateParam.FindAllStringSubmatch(path, -1) {
		params = append(params, obj{"name": m[1], "in": "path", "required": true, "schema": obj{"type": "string"}})
	}
	for _, m := range methods {
		m = strings.ToLower(m)
		op := obj{"operationId": r.ID + "_" + m, "summary": "Route " + r.ID, "description": desc,
			"responses": obj{"default": obj{"description": "The service's answer."}}}
		if len(params) > 0 {
			op["parameters"] = params
		}
		b.addOperation(path, m, op, r, camel(r.ID))
	}
}
