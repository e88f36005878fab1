package proxy

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// runHealthChecks probes every target each interval until ctx ends. A
// target goes out after UnhealthyThreshold consecutive failed probes and
// comes back after HealthyThreshold consecutive good ones.
func (p *Pool) runHealthChecks(ctx context.Context) {
	hc := p.cfg.HealthCheck
	client := &http.Client{
		Transport: newTransport(p.cfg, p.tlsConf, hc.Timeout.D(), hc.Timeout.D()),
		Timeout:   hc.Timeout.D(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	defer client.CloseIdleConnections()
	streak := make([]int, len(p.targets)) // >0 successes, <0 failures
	tick := time.NewTicker(hc.Interval.D())
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		results := make([]bool, len(p.targets))
		for i, t := range p.targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = p.probe(ctx, client, t)
			}()
		}
		wg.Wait()
		for i, t := range p.targets {
			p.applyProbe(t, results[i], &streak[i])
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Pool) applyProbe(t *Target, ok bool, streak *int) {
	hc := p.cfg.HealthCheck
	if ok {
		*streak = max(*streak, 0) + 1
		if t.unhealthy.Load() && *streak >= hc.HealthyThreshold {
			t.unhealthy.Store(false)
			p.log.Info("target healthy", "target", t.Host)
		}
		return
	}
	*streak = min(*streak, 0) - 1
	if !t.unhealthy.Load() && -*streak >= hc.UnhealthyThreshold {
		t.unhealthy.Store(true)
		p.log.Warn("target unhealthy", "target", t.Host)
	}
}

func (p *Pool) probe(ctx context.Context, c *http.Client, t *Target) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.scheme+"://"+t.Host+p.cfg.HealthCheck.Path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "rampart-health-check")
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if exp := p.cfg.HealthCheck.ExpectStatus; len(exp) > 0 {
		for _, s := range exp {
			if s == resp.StatusCode {
				return true
			}
		}
		return false
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}
