//go:build ignore

// corpus writes the mixed corpus of the template test (ids, UUIDs, slugs,
// hashes, dates, versions and fixed names) as a HAR file and as recorded
// JSON lines into the directory named by its argument.

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func main() {
	type req struct{ method, path string }
	var reqs []req
	for i := 0; i < 40; i++ {
		reqs = append(reqs,
			req{"GET", fmt.Sprintf("/v2/users/%d", 1000+i)},
			req{"GET", fmt.Sprintf("/v2/orders/3f2b8c1e-%04x-4c2d-9e7f-1a2b3c4d5e6f/items/%d", i, i)},
			req{"GET", fmt.Sprintf("/articles/how-to-tune-part-%s", strings.Repeat("x", i%7)+fmt.Sprint(i))},
			req{"GET", fmt.Sprintf("/files/%064x", i*7919)},
			req{"GET", fmt.Sprintf("/reports/2026-11-%02d", 1+i%28)})
	}
	for _, f := range []string{"/v2/users/me", "/v2/users/search", "/v2/status"} {
		reqs = append(reqs, req{"GET", f})
	}
	var entries []any
	rec, _ := os.Create(os.Args[1] + "/recorded.jsonl")
	for _, r := range reqs {
		body := `{"ok":true}`
		entries = append(entries, map[string]any{
			"startedDateTime": "2026-12-06T10:00:00Z", "time": 1,
			"request":  map[string]any{"method": r.method, "url": "https://api.example.com" + r.path, "httpVersion": "HTTP/1.1", "headers": []any{}, "queryString": []any{}, "cookies": []any{}, "headersSize": -1, "bodySize": 0},
			"response": map[string]any{"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": []any{map[string]string{"name": "Content-Type", "value": "application/json"}}, "cookies": []any{}, "content": map[string]any{"size": len(body), "mimeType": "application/json", "text": body}, "redirectURL": "", "headersSize": -1, "bodySize": len(body)},
			"cache":    map[string]any{}, "timings": map[string]any{"send": 0, "wait": 1, "receive": 0},
		})
		fmt.Fprintf(rec, `{"method":%q,"path":%q,"status":200,"response_content_type":"application/json","response_body":%s}`+"\n", r.method, r.path, body)
	}
	rec.Close()
	har := map[string]any{"log": map[string]any{"version": "1.2", "creator": map[string]string{"name": "corpus", "version": "1"}, "entries": entries}}
	b, _ := json.Marshal(har)
	os.WriteFile(os.Args[1]+"/corpus.har", b, 0o644)
}
