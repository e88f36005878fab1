package abuse

import (
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/router"
)

// Compile builds the guard's options from the abuse section. shared is
// the Redis client bans are shared through (nil: local bans only).
func Compile(cfg *config.Config, deps pipeline.Deps, shared redis.UniversalClient) Options {
	a := cfg.Abuse
	o := Options{BanFor: a.BanFor.D(), Log: deps.Log, Events: deps.Events, Tighten: a.Action == "tighten",
		IPv6Prefix: cfg.ClientIP.IPv6Prefix, MaxClients: a.MaxClients}
	if shared != nil {
		o.Redis, o.Prefix = shared, KeyPrefix(cfg.RateLimiting.Redis.KeyPrefix)
	}
	if cs := a.CredentialStuffing; !cs.Disabled {
		o.AccountIPs, o.AccountWindow = cs.DistinctIPs, cs.Window.D()
	}
	if sc := a.Scraping; !sc.Disabled {
		o.Scrape = scrapeSettings{distinct: sc.Distinct, window: sc.Window.D(), ban: sc.Action == "ban"}
		if l := sc.Learned; !l.Disabled {
			o.Scrape.learn = learnSettings{z: l.Z, floor: l.Floor, windows: l.Windows}
		}
	}
	if sp := a.IdentitySpread; !sp.Disabled {
		o.Spread = spreadSettings{addresses: sp.Addresses, identities: sp.Identities, window: sp.Window.D()}
	}
	for _, s := range a.Allow {
		if p, err := config.ParsePrefix(s); err == nil {
			o.Allow = append(o.Allow, p)
		}
	}
	if an := a.Anomaly; an != nil {
		o.Baseline = NewBaseline(an.Interval.D(), an.Z, an.MinRequests, a.MaxClients)
		o.BanOutliers = an.Action == "ban"
		if !an.Routes.Disabled {
			now := deps.Now
			if now == nil {
				now = time.Now
			}
			o.Endpoints = NewEndpoints(an.Interval.D(), an.Z, an.Routes.MinRequests, EndpointEvent(o.Events, now))
		}
	}
	o.addDetector("brute_force", a.BruteForce, Statuses(false, 401))
	o.addDetector("scanning", a.Scanning, Codes(router.CodeNotFound, router.CodeUnknownHost))
	o.addDetector("enumeration", a.Enumeration, func(status int, code string, _ bool) bool {
		return (status == 403 || status == 404) && code != router.CodeNotFound && code != router.CodeUnknownHost && !isFuzz(code)
	})
	o.addDetector("fuzzing", a.Fuzzing, func(_ int, code string, _ bool) bool { return isFuzz(code) })
	return o
}

// addDetector adds a configured detector. Sensitive routes (login,
// payment) get their own, tighter count.
func (o *Options) addDetector(name string, d config.Detector, match func(int, string, bool) bool) {
	if d.Disabled {
		return
	}
	keys := keyKinds(d.Keys)
	o.Detectors = append(o.Detectors, Detector{Name: name + "/sensitive", Threshold: d.SensitiveThreshold, Window: d.Window.D(), Keys: keys,
		Match: func(st int, code string, sensitive bool) bool { return sensitive && match(st, code, sensitive) }})
	if !d.SensitiveOnly {
		o.Detectors = append(o.Detectors, Detector{Name: name, Threshold: d.Threshold, Window: d.Window.D(), Keys: keys,
			Match: func(st int, code string, sensitive bool) bool { return !sensitive && match(st, code, sensitive) }})
	}
}

// keyKinds reads a detector's keys (config.Detector.Keys).
func keyKinds(names []string) KeyKinds {
	var ks KeyKinds
	for _, n := range names {
		switch n {
		case "ip":
			ks |= KeyIP
		case "identity":
			ks |= KeyIdentity
		case "session":
			ks |= KeySession
		}
	}
	return ks
}

// isFuzz reports a refusal of malformed or hostile input: the request
// validation, OpenAPI, framing and path checks, body limits and the WAF.
// Such refusals are what trying input after input produces.
func isFuzz(code string) bool {
	for _, p := range []string{"validate.", "waf.", "request.bad_", "request.body_", "request.framing"} {
		if strings.HasPrefix(code, p) {
			return true
		}
	}
	return false
}
