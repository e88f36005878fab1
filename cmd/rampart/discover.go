package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/discovery"
	"github.com/rampart-gw/rampart/internal/plan"
)

// cmdDiscover is `rampart discover learn` (learn offline from an access
// log or a recorded file), `rampart discover export` and `report` (what
// a running gateway learned, through its admin API).
func cmdDiscover(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "export":
			return cmdAdmin(append([]string{"discovery-openapi"}, args[1:]...), stdout, stderr)
		case "report":
			return cmdAdmin(append([]string{"discovery-report"}, args[1:]...), stdout, stderr)
		}
	}
	fs := newFlags("discover learn", "rampart discover learn --from FILE [--config FILE] [--report] | rampart discover export|report [admin flags]", stderr)
	from := fs.String("from", "", "an access log (JSON lines) or a recorded file (JSON lines with bodies)")
	cfgPath := fs.String("config", "", "the config: assigns requests to routes and, with --report, the documents to compare with")
	report := fs.Bool("report", false, "print the report against the config's documents instead of the learned document")
	if len(args) == 0 || args[0] != "learn" {
		return fs.bad()
	}
	if !fs.parse(args[1:]) || *from == "" || (*report && *cfgPath == "") {
		return fs.bad()
	}
	var cfg *config.Config
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			printProblems(stderr, err)
			return 1
		}
	}
	// Offline, the whole corpus is the window: a documented operation it
	// never shows is a zombie.
	st := &plan.State{Discovery: discovery.New(1, discovery.Settings{MaxOperations: 100000, Window: 100 * 365 * 24 * time.Hour}, time.Time{}, nil)}
	defer st.Discovery.Close()
	n, err := learnFile(*from, cfg, st.Discovery)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stderr, "learned from %d requests\n", n)
	if !*report {
		_, _ = stdout.Write(st.Discovery.Draft())
		return 0
	}
	cfg.Discovery = &config.Discovery{}
	_, rep, err := plan.Discovered(st, cfg, time.Now())
	if err != nil {
		return fail(stderr, err)
	}
	e := json.NewEncoder(stdout)
	e.SetIndent("", "  ")
	return exitOn(e.Encode(rep), stderr)
}

func exitOn(err error, stderr io.Writer) int {
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// recorded is one line of an access log or a recorded file.
type recorded struct {
	Msg      string          `json:"msg"`
	Route    string          `json:"route"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Query    string          `json:"query"`
	Status   int             `json:"status"`
	ReqType  string          `json:"request_content_type"`
	ReqBody  json.RawMessage `json:"request_body"`
	RespType string          `json:"response_content_type"`
	RespBody json.RawMessage `json:"response_body"`
	Auth     string          `json:"auth"`
	Time     time.Time       `json:"time"`
	Upstream string          `json:"upstream"`
	Code     string          `json:"code"`
}

// learnFile learns every forwarded request of a JSON-lines file: access
// log lines (msg "access", forwarded to an upstream) or recorded lines
// with bodies. A request is assigned to the route its line names, else to
// the config route that serves it, else to "-".
func learnFile(path string, cfg *config.Config, l *discovery.Learner) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		var r recorded
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Method == "" || r.Path == "" || r.Code != "" {
			continue // not a request line, or one the gateway refused
		}
		if r.Msg == "access" && r.Upstream == "" {
			continue
		}
		q, _ := url.ParseQuery(r.Query)
		s := discovery.Sample{Route: routeOf(r, cfg), Method: r.Method, Path: r.Path, Query: q, Status: r.Status, Auth: r.Auth,
			ReqType: r.ReqType, ReqBody: body(r.ReqBody), RespType: r.RespType, RespBody: body(r.RespBody), Time: r.Time}
		if s.Time.IsZero() {
			s.Time = time.Now()
		}
		l.Learn(s)
		n++
	}
	return n, sc.Err()
}

// body is a recorded body: a JSON value as it is, or a string holding one.
func body(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return raw
}

func routeOf(r recorded, cfg *config.Config) string {
	if r.Route != "" && r.Route != "none" {
		return r.Route
	}
	if cfg != nil {
		for _, rt := range cfg.Routes {
			if rt.Serves(r.Method, r.Path) {
				return rt.ID
			}
		}
	}
	return "-"
}
