package main

import (
	"strings"
	"testing"
)

// TestSummarize: a failing test's output is printed and fails the run; a
// skipped test is listed with its reason; passing packages get one line.
func TestSummarize(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"a","Test":"TestOK"}`,
		`{"Action":"pass","Package":"a","Test":"TestOK","Elapsed":0.1}`,
		`{"Action":"run","Package":"a","Test":"TestRedis"}`,
		`{"Action":"output","Package":"a","Test":"TestRedis","Output":"    redis_test.go:12: redis-server not installed\n"}`,
		`{"Action":"output","Package":"a","Test":"TestRedis","Output":"--- SKIP: TestRedis (0.00s)\n"}`,
		`{"Action":"skip","Package":"a","Test":"TestRedis"}`,
		`{"Action":"pass","Package":"a","Elapsed":1.5}`,
		`{"Action":"run","Package":"b","Test":"TestBad"}`,
		`{"Action":"output","Package":"b","Test":"TestBad","Output":"    b_test.go:3: want 1, got 2\n"}`,
		`{"Action":"fail","Package":"b","Test":"TestBad"}`,
		`{"Action":"fail","Package":"b","Elapsed":0.2}`,
	}, "\n")
	var out strings.Builder
	if code := summarize(strings.NewReader(in), &out); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"ok   a (2 tests, 1 skipped) 1.5s\n",
		"FAIL b (1 tests, 1 failed) 0.2s\n    b_test.go:3: want 1, got 2\n",
		"skipped (1):\n  a TestRedis: redis-server not installed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := summarize(strings.NewReader(""), &out); code != 1 {
		t.Error("an empty stream must fail the run")
	}
}
