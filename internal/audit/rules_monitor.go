package audit

import (
	"github.com/rampart-gw/rampart/internal/config"
)

var monitorRules = []Rule{
	{
		ID: "RA-MON-001", Practice: Monitor, Severity: High,
		Title: "The access log is off",
		Why:   "Without a record of each request an incident cannot be reconstructed: who called what, when, with which answer.",
		Refs:  []string{"CWE-778", "OWASP API10:2019", "NIST SP 800-204 MS-SS-10"},
		Fix:   "access_log: {output: stdout}",
		Check: func(c *config.Config, ck *checker) {
			if c.AccessLog.Enabled != nil && !*c.AccessLog.Enabled {
				ck.at("access_log.enabled", "no request is logged")
			}
		},
	},
	{
		ID: "RA-MON-002", Practice: Monitor, Severity: High,
		Title: "Security events are off",
		Why:   "Refusals, detector findings, bans and config changes are the signals a SOC watches; off, attacks go unseen.",
		Refs:  []string{"CWE-778", "CWE-223"},
		Fix:   "security_events: {output: stdout}",
		Check: func(c *config.Config, ck *checker) {
			if c.SecurityEvents.Enabled != nil && !*c.SecurityEvents.Enabled {
				ck.at("security_events.enabled", "no security event is emitted")
			}
		},
	},
	{
		ID: "RA-MON-003", Practice: Monitor, Severity: Medium,
		Title: "No admin listener: no metrics, health or posture",
		Why:   "Without /metrics and /readyz nothing scrapes the gateway's refusals and latencies, and orchestrators cannot tell it is unhealthy.",
		Refs:  []string{"CWE-778"},
		Fix:   "admin: {address: 127.0.0.1:9901, token: \"${env:RAMPART_ADMIN_TOKEN}\"}",
		Check: func(c *config.Config, ck *checker) {
			if c.Admin == nil {
				ck.at("admin", "the admin section is not set")
			}
		},
	},
	{
		ID: "RA-MON-004", Practice: Monitor, Severity: Medium,
		Title: "Traces continue any caller's trace context",
		Why:   "A caller that sets traceparent chooses trace ids and sampling: it can flood the tracing backend or splice its requests into others' traces.",
		Refs:  []string{"CWE-345"},
		Fix:   "tracing: {trust_incoming: trusted_proxies}",
		Check: func(c *config.Config, ck *checker) {
			if t := c.Tracing; t != nil && t.TrustIncoming == "all" {
				ck.at("tracing.trust_incoming", "every client's traceparent is continued")
			}
		},
	},
	{
		ID: "RA-MON-005", Practice: Monitor, Severity: Low,
		Title: "Requests are not traced",
		Why:   "Without traces a slow or failing request cannot be followed from the gateway into the services.",
		Refs:  []string{"NIST SP 800-204 MS-SS-10"},
		Fix:   "tracing: {endpoint: otel-collector:4318, sample_ratio: 0.05}",
		Check: func(c *config.Config, ck *checker) {
			if c.Tracing == nil {
				ck.at("tracing", "the tracing section is not set")
			}
		},
	},
	{
		ID: "RA-MON-006", Practice: Monitor, Severity: Low,
		Title: "Traffic is not compared with a learned baseline",
		Why:   "Fixed thresholds miss a client or a route that behaves unlike its own history; anomaly detection learns that history.",
		Refs:  []string{"OWASP API6:2023"},
		Fix:   "abuse: {anomaly: {}}",
		Check: func(c *config.Config, ck *checker) {
			if c.Abuse != nil && c.Abuse.Anomaly == nil {
				ck.at("abuse", "abuse.anomaly is not set")
			}
		},
	},
	{
		ID: "RA-MON-007", Practice: Monitor, Severity: Low,
		Title: "Changes are not journaled",
		Why:   "Without the hash-chained journal, config reloads and admin actions (revocations, bans) leave no tamper-evident record.",
		Refs:  []string{"CWE-778", "CWE-117"},
		Fix:   "journal: {output: /var/lib/rampart/journal.jsonl, checkpoint_key: \"${env:RAMPART_JOURNAL_KEY}\"}",
		Check: func(c *config.Config, ck *checker) {
			if c.Journal == nil {
				ck.at("journal", "the journal section is not set")
			}
		},
	},
	{
		ID: "RA-MON-008", Practice: Monitor, Severity: Medium,
		Title: "Logs or events are written to /dev/null",
		Why:   "The output is configured and discarded: the same as off, but it looks on.",
		Refs:  []string{"CWE-778"},
		Fix:   "access_log: {output: stdout}",
		Check: func(c *config.Config, ck *checker) {
			if c.AccessLog.Enabled != nil && *c.AccessLog.Enabled && c.AccessLog.Output == "/dev/null" {
				ck.at("access_log.output", "the access log goes to /dev/null")
			}
			if c.SecurityEvents.Enabled != nil && *c.SecurityEvents.Enabled && c.SecurityEvents.Output == "/dev/null" && c.SecurityEvents.Webhook == nil {
				ck.at("security_events.output", "security events go to /dev/null")
			}
		},
	},
}
