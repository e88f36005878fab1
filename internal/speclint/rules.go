package speclint

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// report records a finding at node n (pointer ptr) with a message.
type report func(n *yaml.Node, ptr, msg string)

// rule is one check: the one table below is what the linter runs, what
// the docs list and what the tests cover (each rule with a document that
// breaks it and one that does not).
type rule struct {
	id       string
	severity Severity
	summary  string // what it asks for
	fix      string // how to comply
	check    func(d *doc, r report)
}

// rules: the OWASP API Security Top 10 2023 ruleset of Stoplight's
// Spectral (same ids), then the checks only Rampart makes.
var rules = []rule{
	{"owasp:api1:2023-no-numeric-ids", Error, "resource ids in paths are not guessable integers",
		"use a random id (type: string, format: uuid)", noNumericIDs},
	{"owasp:api2:2023-no-http-basic", Error, "no HTTP Basic authentication",
		"use OAuth 2.0 / OIDC bearer tokens or mutual TLS", noHTTPBasic},
	{"owasp:api2:2023-no-api-keys-in-url", Error, "API keys are not sent in the URL",
		"send the key in a header (in: header)", noAPIKeysInURL},
	{"owasp:api2:2023-no-credentials-in-url", Error, "no credentials in path or query parameters",
		"move the credential to a header or the body", noCredentialsInURL},
	{"owasp:api2:2023-auth-insecure-schemes", Error, "no outdated HTTP authentication schemes",
		"use bearer tokens (OAuth 2.0) instead of negotiate or OAuth 1", insecureSchemes},
	{"owasp:api2:2023-jwt-best-practices", Error, "JWT and OAuth 2 schemes state RFC 8725 conformance",
		"say in the scheme's description that tokens follow RFC8725 (and have the gateway enforce it)", jwtBestPractices},
	{"owasp:api2:2023-short-lived-access-tokens", Error, "OAuth 2 flows support refresh tokens (short-lived access tokens)",
		"declare refreshUrl on the flow", shortLivedTokens},
	{"owasp:api2:2023-write-restricted", Error, "write operations require authentication",
		"add a security requirement (operation or document level)", writeRestricted},
	{"owasp:api2:2023-read-restricted", Warning, "read operations require authentication",
		"add a security requirement, or mark the operation public deliberately (security: [])", readRestricted},
	{"owasp:api3:2023-no-additionalProperties", Warning, "additionalProperties, where used, is false (OpenAPI 3.0)",
		"set additionalProperties: false", noAdditionalProperties},
	{"owasp:api3:2023-constrained-additionalProperties", Warning, "an additionalProperties schema comes with maxProperties (OpenAPI 3.0)",
		"set additionalProperties: false, or add maxProperties", constrainedAdditionalProperties},
	{"owasp:api3:2023-no-unevaluatedProperties", Warning, "unevaluatedProperties, where used, is false (OpenAPI 3.1)",
		"set unevaluatedProperties: false", noUnevaluatedProperties},
	{"owasp:api3:2023-constrained-unevaluatedProperties", Warning, "an unevaluatedProperties schema comes with maxProperties (OpenAPI 3.1)",
		"set unevaluatedProperties: false, or add maxProperties", constrainedUnevaluatedProperties},
	{"owasp:api4:2023-rate-limit", Error, "2XX and 4XX responses declare rate-limit headers",
		"declare RateLimit-Limit and RateLimit-Reset (or RateLimit/RateLimit-Policy, or X-RateLimit-Limit) headers", rateLimitHeaders},
	{"owasp:api4:2023-rate-limit-retry-after", Error, "429 responses declare Retry-After",
		"add a Retry-After header to the 429 response", retryAfter},
	{"owasp:api4:2023-rate-limit-responses-429", Warning, "operations declare a 429 response with content",
		"add a 429 response (application/problem+json)", responses429},
	{"owasp:api4:2023-array-limit", Error, "arrays have maxItems",
		"set maxItems", arrayLimit},
	{"owasp:api4:2023-string-limit", Error, "strings have maxLength, enum or const",
		"set maxLength", stringLimit},
	{"owasp:api4:2023-string-restricted", Error, "strings have format, pattern, enum or const",
		"set a format or a pattern", stringRestricted},
	{"owasp:api4:2023-integer-limit", Error, "integers have a minimum and a maximum",
		"set minimum (or exclusiveMinimum) and maximum (or exclusiveMaximum)", integerLimit},
	{"owasp:api4:2023-integer-format", Error, "integers have a format",
		"set format: int32 or int64", integerFormat},
	{"owasp:api5:2023-admin-security-unique", Error, "admin operations do not declare a security requirement a non-admin operation declares",
		"protect /admin operations with a requirement of their own", adminSecurityUnique},
	{"owasp:api7:2023-concerning-url-parameter", Info, "parameters that carry URLs are reviewed (SSRF)",
		"validate the URL against an allow list on the server; prefer ids over URLs", concerningURLParameter},
	{"owasp:api8:2023-define-cors-origin", Error, "response headers declare Access-Control-Allow-Origin",
		"declare the Access-Control-Allow-Origin header (the origins the CORS policy allows)", corsOrigin},
	{"owasp:api8:2023-define-error-responses-401", Warning, "operations declare a 401 response with content",
		"add a 401 response (application/problem+json)", errorResponse("401")},
	{"owasp:api8:2023-define-error-responses-500", Warning, "operations declare a 500 response with content",
		"add a 500 response (application/problem+json)", errorResponse("500")},
	{"owasp:api8:2023-define-error-validation", Warning, "operations declare a 400, 422 or 4XX response",
		"add a 400 response for invalid requests", errorValidation},
	{"owasp:api8:2023-no-server-http", Error, "server URLs use https",
		"use an https:// server URL", noServerHTTP},
	{"owasp:api9:2023-inventory-access", Error, "servers say whether they are internal (x-internal)",
		"set x-internal: true or false on each server", inventoryAccess},
	{"owasp:api9:2023-inventory-environment", Error, "server descriptions name their environment",
		"say local, sandbox, development, test, staging or production in the server's description", inventoryEnvironment},
	{"rampart:sensitive-response-field", Warning, "responses do not return secrets or personal data by name",
		"remove the field from the response, or mask it (writeOnly for request-only secrets)", sensitiveResponseField},
	{"rampart:secret-like-example", Error, "examples do not contain real-looking secrets or personal data",
		"replace the example with an obviously fake value", secretLikeExample},
	{"rampart:admin-scheme-shared", Error, "admin operations use a security scheme no other operation uses (inherited security included)",
		"protect /admin operations with a scheme of their own (a separate issuer, mutual TLS)", adminSchemeShared},
	{"rampart:request-body-open", Error, "request body objects refuse undeclared properties (mass assignment)",
		"set additionalProperties: false on the request body schema", requestBodyOpen},
}

var adminPath = regexp.MustCompile(`(?i)(^|/)admin(/|$)`)

var credentialName = regexp.MustCompile(`(?i)(client_?secret|token|access_?token|refresh_?token|id_?token|password|passwd|secret|api-?_?key)`)

var urlParameterName = regexp.MustCompile(`(?i)^(callback|redirect|redirect_?uri|redirect_?url|return_?url|return_?to|next|url|uri|dest|destination|target|webhook|feed|image_?url|link)$`)

var sensitiveField = regexp.MustCompile(`(?i)^(password|passwd|pass_?hash|password_?hash|secret|client_?secret|api_?key|private_?key|ssn|social_?security_?number|national_?id|card_?number|credit_?card|pan|cvv|cvc|pin|iban|tax_?id)$`)

var idParam = regexp.MustCompile(`^id$|(_id|Id|-id)$`)

func noNumericIDs(d *doc, r report) {
	for _, op := range d.operations() {
		for _, p := range d.parameters(op) {
			name := scalar(field(p, "name"))
			if scalar(field(p, "in")) != "path" || !idParam.MatchString(name) {
				continue
			}
			s := d.resolve(field(p, "schema"))
			if contains(schemaTypes(s), "integer") || (s != nil && scalar(field(s, "format")) != "uuid") {
				r(p, op.ptr, "path parameter "+name+" is not a UUID: ids that can be guessed invite enumeration (BOLA)")
			}
		}
	}
}

// securitySchemes calls f for each security scheme, resolved.
func securitySchemes(d *doc, f func(name string, s *yaml.Node, ptr string)) {
	pairs(field(field(d.root, "components"), "securitySchemes"), func(k, v *yaml.Node) {
		if s := d.resolve(v); s != nil {
			f(k.Value, s, "/components/securitySchemes/"+escape(k.Value))
		}
	})
}

func noHTTPBasic(d *doc, r report) {
	securitySchemes(d, func(name string, s *yaml.Node, ptr string) {
		if strings.EqualFold(scalar(field(s, "scheme")), "basic") {
			r(s, ptr, "security scheme "+name+" is HTTP Basic")
		}
	})
}

func noAPIKeysInURL(d *doc, r report) {
	securitySchemes(d, func(name string, s *yaml.Node, ptr string) {
		if in := scalar(field(s, "in")); scalar(field(s, "type")) == "apiKey" && (in == "query" || in == "path") {
			r(s, ptr, "API key scheme "+name+" is sent in the "+in)
		}
	})
}

func noCredentialsInURL(d *doc, r report) {
	for _, op := range d.operations() {
		for _, p := range d.parameters(op) {
			in, name := scalar(field(p, "in")), scalar(field(p, "name"))
			if (in == "query" || in == "path") && credentialName.MatchString(name) {
				r(p, op.ptr, in+" parameter "+name+" looks like a credential: URLs end up in logs, histories and Referer headers")
			}
		}
	}
}

func insecureSchemes(d *doc, r report) {
	securitySchemes(d, func(name string, s *yaml.Node, ptr string) {
		if sc := strings.ToLower(scalar(field(s, "scheme"))); scalar(field(s, "type")) == "http" && (sc == "negotiate" || sc == "oauth") {
			r(s, ptr, "security scheme "+name+" uses the outdated "+sc+" scheme")
		}
	})
}

func jwtBestPractices(d *doc, r report) {
	securitySchemes(d, func(name string, s *yaml.Node, ptr string) {
		jwt := scalar(field(s, "type")) == "oauth2" || scalar(field(s, "type")) == "openIdConnect" ||
			strings.EqualFold(scalar(field(s, "bearerFormat")), "jwt")
		if jwt && !strings.Contains(strings.ReplaceAll(scalar(field(s, "description")), " ", ""), "RFC8725") {
			r(s, ptr, "token scheme "+name+" does not state RFC 8725 (JWT best current practices) in its description")
		}
	})
}

func shortLivedTokens(d *doc, r report) {
	securitySchemes(d, func(name string, s *yaml.Node, ptr string) {
		if scalar(field(s, "type")) != "oauth2" {
			return
		}
		pairs(field(s, "flows"), func(k, flow *yaml.Node) {
			if k.Value != "clientCredentials" && scalar(field(flow, "refreshUrl")) == "" {
				r(flow, ptr+"/flows/"+k.Value, "OAuth 2 flow "+k.Value+" of "+name+" has no refreshUrl: access tokens cannot be short-lived")
			}
		})
	})
}

// unprotected reports whether op's security in force lets a request in
// without credentials: none declared, an empty list, or an empty
// requirement ({}, optional authentication).
func unprotected(d *doc, op operation) bool {
	s := d.security(op)
	if s == nil || s.Kind != yaml.SequenceNode || len(s.Content) == 0 {
		return true
	}
	for _, req := range s.Content {
		if req.Kind == yaml.MappingNode && len(req.Content) == 0 {
			return true
		}
	}
	return false
}

func writeRestricted(d *doc, r report) {
	for _, op := range d.operations() {
		switch op.method {
		case "post", "put", "patch", "delete":
			if unprotected(d, op) {
				r(op.node, op.ptr, strings.ToUpper(op.method)+" "+op.path+" changes state without authentication")
			}
		}
	}
}

func readRestricted(d *doc, r report) {
	for _, op := range d.operations() {
		if (op.method == "get" || op.method == "head") && unprotected(d, op) {
			r(op.node, op.ptr, strings.ToUpper(op.method)+" "+op.path+" has no authentication")
		}
	}
}

func objectSchemas(d *doc, f func(n *yaml.Node, ptr string)) {
	d.schemaNodes(func(n *yaml.Node, ptr string, ts []string) {
		if contains(ts, "object") {
			f(n, ptr)
		}
	})
}

// keywordRules are the four rules on additionalProperties (3.0) and
// unevaluatedProperties (3.1): where the keyword is used it must be
// false; a schema there needs maxProperties.
func keywordUsed(d *doc, r report, keyword string, v31 bool, schemaOnly bool) {
	if d.v31 != v31 {
		return
	}
	objectSchemas(d, func(n *yaml.Node, ptr string) {
		v := field(n, keyword)
		if v == nil || (v.Kind == yaml.ScalarNode && v.Value == "false") {
			return
		}
		isSchema := v.Kind == yaml.MappingNode
		switch {
		case !schemaOnly:
			r(v, ptr+"/"+keyword, keyword+" is not false: undeclared properties are accepted")
		case isSchema && !has(n, "maxProperties"):
			r(v, ptr+"/"+keyword, keyword+" is a schema and the object has no maxProperties")
		}
	})
}

func noAdditionalProperties(d *doc, r report) {
	keywordUsed(d, r, "additionalProperties", false, false)
}
func constrainedAdditionalProperties(d *doc, r report) {
	keywordUsed(d, r, "additionalProperties", false, true)
}
func noUnevaluatedProperties(d *doc, r report) {
	keywordUsed(d, r, "unevaluatedProperties", true, false)
}
func constrainedUnevaluatedProperties(d *doc, r report) {
	keywordUsed(d, r, "unevaluatedProperties", true, true)
}

// unconstrained reports whether an additionalProperties or
// unevaluatedProperties value lets anything in: true, or a schema
// without a type.
func unconstrained(v *yaml.Node) bool {
	if v == nil {
		return false
	}
	if v.Kind == yaml.ScalarNode {
		return v.Value == "true"
	}
	return v.Kind == yaml.MappingNode && !has(v, "type") && !has(v, "$ref")
}

// eachResponse calls f for every response of every operation.
func eachResponse(d *doc, f func(op operation, status string, resp *yaml.Node, ptr string)) {
	for _, op := range d.operations() {
		resps, _ := d.responses(op)
		for _, status := range sortedKeys(resps) {
			f(op, status, resps[status], op.ptr+"/responses/"+status)
		}
	}
}

// header reports whether a response declares header name (any case).
func header(resp *yaml.Node, name string) bool {
	found := false
	pairs(field(resp, "headers"), func(k, _ *yaml.Node) {
		if strings.EqualFold(k.Value, name) {
			found = true
		}
	})
	return found
}

func rateLimitHeaders(d *doc, r report) {
	eachResponse(d, func(op operation, status string, resp *yaml.Node, ptr string) {
		if status == "" || (status[0] != '2' && status[0] != '4') {
			return
		}
		ok := (header(resp, "RateLimit-Limit") && header(resp, "RateLimit-Reset")) || header(resp, "RateLimit") ||
			header(resp, "X-RateLimit-Limit") || header(resp, "X-Rate-Limit-Limit")
		if !ok {
			r(resp, ptr, "response "+status+" of "+strings.ToUpper(op.method)+" "+op.path+" declares no rate-limit headers")
		}
	})
}

func retryAfter(d *doc, r report) {
	eachResponse(d, func(op operation, status string, resp *yaml.Node, ptr string) {
		if status == "429" && !header(resp, "Retry-After") {
			r(resp, ptr, "429 response of "+strings.ToUpper(op.method)+" "+op.path+" declares no Retry-After header")
		}
	})
}

// errorResponse is a rule asking every operation for a response with
// content for status.
func errorResponse(status string) func(d *doc, r report) {
	return func(d *doc, r report) {
		for _, op := range d.operations() {
			resps, node := d.responses(op)
			if resp, ok := resps[status]; !ok || !has(resp, "content") {
				r(orNode(node, op.node), op.ptr+"/responses", strings.ToUpper(op.method)+" "+op.path+" declares no "+status+" response with content")
			}
		}
	}
}

func responses429(d *doc, r report) { errorResponse("429")(d, r) }

func errorValidation(d *doc, r report) {
	for _, op := range d.operations() {
		resps, node := d.responses(op)
		if resps["400"] == nil && resps["422"] == nil && resps["4XX"] == nil {
			r(orNode(node, op.node), op.ptr+"/responses", strings.ToUpper(op.method)+" "+op.path+" declares no 400, 422 or 4XX response")
		}
	}
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

func arrayLimit(d *doc, r report) {
	d.schemaNodes(func(n *yaml.Node, ptr string, ts []string) {
		if contains(ts, "array") && !has(n, "maxItems") {
			r(n, ptr, "array without maxItems")
		}
	})
}

func stringLimit(d *doc, r report) {
	d.schemaNodes(func(n *yaml.Node, ptr string, ts []string) {
		if contains(ts, "string") && !has(n, "maxLength") && !has(n, "enum") && !has(n, "const") {
			r(n, ptr, "string without maxLength, enum or const")
		}
	})
}

func stringRestricted(d *doc, r report) {
	d.schemaNodes(func(n *yaml.Node, ptr string, ts []string) {
		if contains(ts, "string") && !has(n, "format") && !has(n, "pattern") && !has(n, "enum") && !has(n, "const") {
			r(n, ptr, "string without format, pattern, enum or const")
		}
	})
}

func integerLimit(d *doc, r report) {
	d.schemaNodes(func(n *yaml.Node, ptr string, ts []string) {
		if !contains(ts, "integer") {
			return
		}
		lo := has(n, "minimum") || (d.v31 && has(n, "exclusiveMinimum"))
		hi := has(n, "maximum") || (d.v31 && has(n, "exclusiveMaximum"))
		if !lo || !hi {
			r(n, ptr, "integer without minimum and maximum")
		}
	})
}

func integerFormat(d *doc, r report) {
	d.schemaNodes(func(n *yaml.Node, ptr string, ts []string) {
		if contains(ts, "integer") && !has(n, "format") {
			r(n, ptr, "integer without format (int32 or int64)")
		}
	})
}

// schemeNames are the scheme names an operation's security in force
// uses.
func schemeNames(d *doc, op operation) map[string]bool {
	out := map[string]bool{}
	if s := d.security(op); s != nil {
		for _, req := range s.Content {
			pairs(req, func(k, _ *yaml.Node) { out[k.Value] = true })
		}
	}
	return out
}

// adminSecurityUnique: an admin operation (a path containing /admin)
// must not declare, at operation level, a requirement that a non-admin
// operation declares at operation level (Spectral's semantics).
func adminSecurityUnique(d *doc, r report) {
	other := map[string]bool{}
	type entry struct {
		op  operation
		req *yaml.Node
	}
	var admin []entry
	for _, op := range d.operations() {
		s := field(op.node, "security")
		if s == nil || s.Kind != yaml.SequenceNode {
			continue
		}
		for _, req := range s.Content {
			if strings.Contains(op.path, "/admin") {
				admin = append(admin, entry{op, req})
			} else {
				other[requirementKey(req)] = true
			}
		}
	}
	for _, e := range admin {
		if other[requirementKey(e.req)] {
			r(e.req, e.op.ptr+"/security", strings.ToUpper(e.op.method)+" "+e.op.path+" declares the same security requirement as a non-admin operation")
		}
	}
}

// requirementKey is a security requirement as a comparable string.
func requirementKey(req *yaml.Node) string {
	var b strings.Builder
	pairs(req, func(k, v *yaml.Node) {
		b.WriteString(k.Value + "[")
		if v.Kind == yaml.SequenceNode {
			for _, s := range v.Content {
				b.WriteString(s.Value + ",")
			}
		}
		b.WriteString("]")
	})
	return b.String()
}

// adminSchemeShared: the security in force for an admin operation
// (inherited included) uses a scheme some other operation uses.
func adminSchemeShared(d *doc, r report) {
	other := map[string]bool{}
	for _, op := range d.operations() {
		if !adminPath.MatchString(op.path) {
			for s := range schemeNames(d, op) {
				other[s] = true
			}
		}
	}
	for _, op := range d.operations() {
		if !adminPath.MatchString(op.path) {
			continue
		}
		names := schemeNames(d, op)
		shared := len(names) == 0
		for s := range names {
			shared = shared || other[s]
		}
		if shared {
			r(op.node, op.ptr, strings.ToUpper(op.method)+" "+op.path+" is an admin operation protected like ordinary ones")
		}
	}
}

func concerningURLParameter(d *doc, r report) {
	for _, op := range d.operations() {
		for _, p := range d.parameters(op) {
			if name := scalar(field(p, "name")); urlParameterName.MatchString(name) {
				r(p, op.ptr, "parameter "+name+" may carry a URL the server fetches or redirects to (SSRF, open redirect)")
			}
		}
	}
}

// corsOrigin: every response that declares headers declares
// Access-Control-Allow-Origin among them (Spectral's semantics: a
// response without headers is left to the rate-limit rule).
func corsOrigin(d *doc, r report) {
	eachResponse(d, func(op operation, status string, resp *yaml.Node, ptr string) {
		if has(resp, "headers") && !header(resp, "Access-Control-Allow-Origin") {
			r(resp, ptr, "response "+status+" of "+strings.ToUpper(op.method)+" "+op.path+" declares headers but not Access-Control-Allow-Origin")
		}
	})
}

// servers calls f for each server of the document.
func servers(d *doc, f func(s *yaml.Node, ptr string)) {
	if list := field(d.root, "servers"); list != nil && list.Kind == yaml.SequenceNode {
		for i, s := range list.Content {
			f(s, "/servers/"+itoa(i))
		}
	}
}

func noServerHTTP(d *doc, r report) {
	servers(d, func(s *yaml.Node, ptr string) {
		if u := scalar(field(s, "url")); !strings.HasPrefix(strings.ToLower(u), "https://") && !strings.HasPrefix(u, "/") {
			r(s, ptr, "server "+u+" is not https")
		}
	})
}

func inventoryAccess(d *doc, r report) {
	servers(d, func(s *yaml.Node, ptr string) {
		if v := scalar(field(s, "x-internal")); v != "true" && v != "false" {
			r(s, ptr, "server "+scalar(field(s, "url"))+" does not say whether it is internal (x-internal)")
		}
	})
}

var environment = regexp.MustCompile(`(?i)(local|sandbox|staging|production|development|test)`)

func inventoryEnvironment(d *doc, r report) {
	servers(d, func(s *yaml.Node, ptr string) {
		if !environment.MatchString(scalar(field(s, "description"))) {
			r(s, ptr, "server "+scalar(field(s, "url"))+" does not name its environment in its description")
		}
	})
}

func sensitiveResponseField(d *doc, r report) {
	eachResponse(d, func(op operation, status string, resp *yaml.Node, ptr string) {
		pairs(field(resp, "content"), func(ct, media *yaml.Node) {
			seen := map[*yaml.Node]bool{}
			var walk func(s *yaml.Node, depth int)
			walk = func(s *yaml.Node, depth int) {
				s = d.resolve(s)
				if s == nil || depth > 12 || seen[s] {
					return
				}
				seen[s] = true
				pairs(field(s, "properties"), func(k, v *yaml.Node) {
					if sensitiveField.MatchString(k.Value) && scalar(field(d.resolve(v), "writeOnly")) != "true" {
						r(k, ptr, "response "+status+" of "+strings.ToUpper(op.method)+" "+op.path+" returns "+k.Value)
					}
					walk(v, depth+1)
				})
				walk(field(s, "items"), depth+1)
				for _, c := range []string{"allOf", "anyOf", "oneOf"} {
					if l := field(s, c); l != nil {
						for _, sub := range l.Content {
							walk(sub, depth+1)
						}
					}
				}
			}
			walk(field(media, "schema"), 0)
		})
	})
}

func requestBodyOpen(d *doc, r report) {
	for _, op := range d.operations() {
		body := d.resolve(field(op.node, "requestBody"))
		pairs(field(body, "content"), func(ct, media *yaml.Node) {
			s := d.resolve(field(media, "schema"))
			if !contains(schemaTypes(s), "object") {
				return
			}
			ap := field(s, "additionalProperties")
			if d.v31 && ap == nil {
				ap = field(s, "unevaluatedProperties")
			}
			if ap == nil || unconstrained(ap) {
				r(s, op.ptr+"/requestBody", "the "+ct.Value+" body of "+strings.ToUpper(op.method)+" "+op.path+" accepts undeclared properties")
			}
		})
	}
}
