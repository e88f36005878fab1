package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDocumentedDefaults keeps the defaults table of docs/config.md in
// step with the constants the loader applies.
func TestDocumentedDefaults(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	dur := func(d time.Duration) string {
		if d%(24*time.Hour) == 0 {
			return fmt.Sprintf("%dd", d/(24*time.Hour))
		}
		if d%time.Second == 0 {
			return fmt.Sprintf("%ds", d/time.Second)
		}
		return d.String()
	}
	size := func(n int64) string {
		switch {
		case n%(1<<20) == 0:
			return fmt.Sprintf("%dMiB", n>>20)
		case n%(1<<10) == 0:
			return fmt.Sprintf("%dKiB", n>>10)
		}
		return fmt.Sprint(n)
	}
	want := map[string]string{
		"listeners[].limits.read_header_timeout":           dur(DefaultReadHeaderTimeout),
		"listeners[].limits.read_timeout":                  dur(DefaultReadTimeout),
		"listeners[].limits.write_timeout":                 dur(DefaultWriteTimeout),
		"listeners[].limits.idle_timeout":                  dur(DefaultIdleTimeout),
		"listeners[].limits.max_header_bytes":              size(DefaultMaxHeaderBytes),
		"listeners[].limits.max_connections":               fmt.Sprint(DefaultMaxConnections),
		"listeners[].limits.max_body_bytes":                size(DefaultMaxBodyBytes),
		"listeners[].tls.hsts.max_age":                     dur(DefaultHSTSMaxAge),
		"upstreams[].timeouts.connect":                     dur(DefaultConnectTimeout),
		"upstreams[].timeouts.response":                    dur(DefaultResponseTimeout),
		"upstreams[].timeouts.idle":                        dur(DefaultIdleConnTimeout),
		"upstreams[].max_idle_conns_per_target":            fmt.Sprint(DefaultMaxIdleConnsPerTarget),
		"upstreams[].health_check.interval":                dur(DefaultHealthInterval),
		"upstreams[].health_check.timeout":                 dur(DefaultHealthTimeout),
		"upstreams[].health_check.healthy_threshold":       fmt.Sprint(DefaultHealthyThreshold),
		"upstreams[].health_check.unhealthy_threshold":     fmt.Sprint(DefaultUnhealthyThreshold),
		"upstreams[].passive.consecutive_failures":         fmt.Sprint(DefaultPassiveFailures),
		"upstreams[].passive.eject_for":                    dur(DefaultEjectFor),
		"upstreams[].circuit_breaker.consecutive_failures": fmt.Sprint(DefaultBreakerFailures),
		"upstreams[].circuit_breaker.open_for":             dur(DefaultBreakerOpenFor),
		"routes[].retries.attempts":                        fmt.Sprint(DefaultRetryAttempts),
		"authn.jwt[].clock_skew":                           dur(DefaultClockSkew),
		"authn.jwt[].refresh":                              dur(DefaultJWKSRefresh),
		"authn.jwt[].min_refetch":                          dur(DefaultMinRefetch),
		"authn.jwt[].fetch_timeout":                        dur(DefaultFetchTimeout),
		"authn.introspection[].timeout":                    dur(DefaultIntrospectionTimeout),
		"assertion.ttl":                                    dur(DefaultAssertionTTL),
		"authn.introspection[].cache_ttl":                  dur(DefaultIntrospectionCache),
		"authn.introspection[].negative_cache_ttl":         dur(DefaultIntrospectionNegCache),
		"routes[].overload.min_limit":                      fmt.Sprint(DefaultOverloadMinLimit),
		"routes[].overload.max_limit":                      fmt.Sprint(DefaultOverloadMaxLimit),
		"routes[].overload.tolerance":                      fmt.Sprint(DefaultOverloadTolerance),
		"routes[].overload.queue":                          fmt.Sprint(DefaultOverloadQueue),
		"routes[].overload.max_wait":                       dur(DefaultOverloadMaxWait),
		"routes[].overload.min_latency":                    dur(DefaultOverloadMinLatency),
	}
	for key, val := range want {
		row := fmt.Sprintf("| `%s` | `%s` |", key, val)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/config.md lacks the row %s", row)
		}
	}
}
