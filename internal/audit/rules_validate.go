package audit

import (
	"fmt"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
)

var validateRules = []Rule{
	{
		ID: "RA-VALID-001", Practice: Validate, Severity: Medium,
		Title: "A route raises its body limit without validating bodies",
		Why:   "A larger body limit on a route that checks neither content type nor structure widens the parser attack surface of the service for nothing.",
		Refs:  []string{"CWE-770", "OWASP API4:2023"},
		Fix:   "validate: {content_types: [application/json], json: {max_depth: 16}}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.MaxBodyBytes > listenersBodyLimit(c, r) && r.Validate == nil && r.OpenAPI == nil {
					ck.route(i, "max_body_bytes", "route %q accepts bodies up to %d bytes and validates none", r.ID, r.MaxBodyBytes)
				}
			}
		},
	},
	{
		ID: "RA-VALID-002", Practice: Validate, Severity: High,
		Title: "The WAF only watches a route that takes bodies",
		Why:   "In detection-only mode injection and upload attacks are logged and then delivered to the service.",
		Refs:  []string{"CWE-20", "OWASP API8:2023"},
		Fix:   "waf: {paranoia: 1}   # detection_only: false",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.WAF != nil && r.WAF.DetectionOnly && takesBody(r) {
					ck.route(i, "waf.detection_only", "route %q's WAF blocks nothing", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-VALID-003", Practice: Validate, Severity: Medium,
		Title: "The WAF's anomaly threshold lets several attack matches through",
		Why:   "The CRS scores a critical match 5; a threshold above 10 lets a request that matches two critical rules reach the service.",
		Refs:  []string{"CWE-20"},
		Fix:   "waf: {anomaly_threshold: 5}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.WAF != nil && r.WAF.AnomalyThreshold > 10 {
					ck.route(i, "waf.anomaly_threshold", "route %q blocks only at an anomaly score of %d", r.ID, r.WAF.AnomalyThreshold)
				}
			}
		},
	},
	{
		ID: "RA-VALID-004", Practice: Validate, Severity: Medium,
		Title: "Undocumented operations pass an OpenAPI route",
		Why:   "In monitor mode requests the document does not declare (shadow endpoints, debug handlers) reach the service.",
		Refs:  []string{"OWASP API9:2023", "CWE-20"},
		Fix:   "openapi: {spec: orders.yaml, undocumented: refuse}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.OpenAPI != nil && r.OpenAPI.Undocumented == "monitor" {
					ck.route(i, "openapi.undocumented", "route %q forwards operations its document does not declare", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-VALID-005", Practice: Validate, Severity: Medium,
		Title: "Credentialed CORS is open to every subdomain",
		Why:   "With credentials, any page on any matching subdomain (one taken over, one hosting user content) can read answers sent with the user's cookies.",
		Refs:  []string{"CWE-942"},
		Fix:   "cors: {origins: [https://shop.example.com], credentials: true}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.CORS == nil || !r.CORS.Credentials {
					continue
				}
				for j, o := range r.CORS.Origins {
					if strings.Contains(o, "*") {
						ck.route(i, fmt.Sprintf("cors.origins[%d]", j), "route %q allows credentialed requests from %s", r.ID, o)
					}
				}
			}
		},
	},
	{
		ID: "RA-VALID-006", Practice: Validate, Severity: Medium,
		Title: "A secure response header default is weakened",
		Why:   "nosniff, frame denial, the referrer policy and no-store for authenticated answers protect browsers from content sniffing, clickjacking and cached personal data.",
		Refs:  []string{"CWE-693", "CWE-1021", "OWASP API8:2023"},
		Fix:   "response_headers: {set: {Permissions-Policy: \"geolocation=()\"}}   # leave the defaults",
		Check: func(c *config.Config, ck *checker) {
			for _, w := range config.WeakenedDefaults(c.ResponseHeaders) {
				ck.at("response_headers."+w.Key, "%s", w.Msg)
			}
			for i, r := range c.Routes {
				for _, w := range config.WeakenedDefaults(r.ResponseHeaders) {
					ck.route(i, "response_headers."+w.Key, "route %q %s", r.ID, w.Msg)
				}
			}
		},
	},
	{
		ID: "RA-VALID-007", Practice: Validate, Severity: Medium,
		Title: "JSON bodies may name a member twice",
		Why:   "The gateway's checks and the service may read different copies of a duplicated member: {\"qty\":1,\"qty\":1000} passes a check of qty <= 10.",
		Refs:  []string{"CWE-436"},
		Fix:   "validate: {json: {allow_duplicate_names: false}}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if v := r.Validate; v != nil && v.JSON != nil && v.JSON.AllowDuplicateNames {
					ck.route(i, "validate.json.allow_duplicate_names", "route %q accepts duplicate JSON member names", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-VALID-008", Practice: Validate, Severity: Low,
		Title: "A route that takes bodies checks none of them",
		Why:   "With no content types, no OpenAPI document and no WAF, any body the listener's limit allows reaches the service's parsers.",
		Refs:  []string{"CWE-20", "OWASP API8:2023"},
		Fix:   "validate: {content_types: [application/json]}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if takesBody(r) && r.Validate == nil && r.OpenAPI == nil && r.WAF == nil && !r.Stream {
					ck.route(i, "", "route %q accepts bodies (%s) and checks none", r.ID, methodsText(r))
				}
			}
		},
	},
	{
		ID: "RA-VALID-009", Practice: Validate, Severity: Medium,
		Title: "A whole class of WAF rules is excluded",
		Why:   "Excluding an attack tag (attack-sqli, attack-xss, ...) turns off every rule of that class for the route, not the one that misfired.",
		Refs:  []string{"CWE-20"},
		Fix:   "waf: {exclude_rules: [942100]}   # the rule that misfires, not its class",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.WAF == nil {
					continue
				}
				for j, t := range r.WAF.ExcludeTags {
					if strings.HasPrefix(strings.ToLower(t), "attack-") || strings.HasPrefix(strings.ToLower(t), "owasp") {
						ck.route(i, fmt.Sprintf("waf.exclude_tags[%d]", j), "route %q excludes every WAF rule tagged %q", r.ID, t)
					}
				}
			}
		},
	},
	{
		ID: "RA-VALID-010", Practice: Validate, Severity: Low,
		Title: "A sensitive route's responses are not checked against its document",
		Why:   "Without response validation a field the service should not return (a password hash, another user's data) leaves through the gateway.",
		Refs:  []string{"OWASP API3:2023", "CWE-213"},
		Fix:   "openapi: {spec: orders.yaml, response: enforce}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.OpenAPI != nil && sensitive(r) && r.OpenAPI.Response == "off" {
					ck.route(i, "openapi", "sensitive route %q does not validate responses", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-VALID-011", Practice: Validate, Severity: Medium,
		Title: "The WAF inspects less of a body than the route accepts",
		Why:   "Beyond the WAF's body_limit the rest of a body is not inspected: an attack placed after it passes.",
		Refs:  []string{"CWE-20"},
		Fix:   "waf: {body_limit: 256KiB}   # at least the route's max_body_bytes",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.WAF != nil && takesBody(r) && r.WAF.BodyLimit < bodyLimit(c, r) {
					ck.route(i, "waf", "route %q accepts %d-byte bodies; its WAF inspects the first %d", r.ID, bodyLimit(c, r), r.WAF.BodyLimit)
				}
			}
		},
	},
	{
		ID: "RA-VALID-012", Practice: Validate, Severity: Low,
		Title: "Any web site may call a route from the browser",
		Why:   "origins: [\"*\"] lets every page a user visits read the route's answers; right for open data, wrong for anything per-user.",
		Refs:  []string{"CWE-942"},
		Fix:   "cors: {origins: [https://shop.example.com]}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.CORS == nil {
					continue
				}
				for j, o := range r.CORS.Origins {
					if o == "*" {
						ck.route(i, fmt.Sprintf("cors.origins[%d]", j), "route %q allows every origin", r.ID)
					}
				}
			}
		},
	},
}
