package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var key = []byte("journal-checkpoint-key-0123456789abcdef")

// written returns a sealed journal of n records and its lines.
func written(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j, err := Open(path, key, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := j.Append("config.reload", "SIGHUP", map[string]string{"after": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	return path, bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
}

func verifyLines(lines [][]byte, k []byte) Report {
	return Verify(bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n')), k)
}

// TestWholeChain: an untouched journal verifies, sealed, with its
// checkpoints.
func TestWholeChain(t *testing.T) {
	_, lines := written(t, 10)
	rep := verifyLines(lines, key)
	if rep.Problem != nil || !rep.Sealed || rep.Checkpoints != 3 || rep.Records != 13 {
		t.Fatalf("%+v", rep)
	}
}

// TestTampering: each way of rewriting history is found at the record
// where it happened.
func TestTampering(t *testing.T) {
	_, lines := written(t, 10)
	clone := func() [][]byte {
		out := make([][]byte, len(lines))
		copy(out, lines)
		return out
	}
	edited := clone()
	edited[2] = bytes.Replace(edited[2], []byte(`"after":"2"`), []byte(`"after":"X"`), 1)
	deleted := append(clone()[:3], lines[4:]...)
	inserted := append(append(clone()[:3], lines[1]), lines[3:]...)
	reordered := clone()
	reordered[2], reordered[3] = reordered[3], reordered[2]
	forged := clone()
	forged[len(forged)-1] = bytes.Replace(forged[len(forged)-1], []byte(`"mac":"`), []byte(`"mac":"00`), 1)
	for name, c := range map[string]struct {
		lines [][]byte
		want  string
	}{
		"edited":    {edited, "line 4 (seq 4): the line before it was edited"},
		"deleted":   {deleted, "line 4 (seq 5): 1 record(s) before it deleted"},
		"inserted":  {inserted, "line 4 (seq 2): inserted or out of order"},
		"reordered": {reordered, "line 3 (seq 4)"},
		"forged":    {forged, "checkpoint does not verify"},
	} {
		rep := verifyLines(c.lines, key)
		if rep.Problem == nil || !strings.Contains(rep.Problem.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, rep.Problem, c.want)
		}
	}
	if rep := verifyLines(lines[:len(lines)-2], key); rep.Problem != nil || rep.Sealed {
		t.Errorf("cut tail: %+v (want whole but unsealed)", rep)
	}
	if rep := verifyLines(lines, []byte("another key")); rep.Problem == nil {
		t.Error("checkpoints verified with another key")
	}
}

// TestConcurrentWriters: several writers on one file (as the gateway and
// the CLI are) produce one valid chain.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		j, err := Open(path, key, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := j.Append("apikey.created", "cli", nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	f, _ := os.Open(path)
	defer f.Close()
	if rep := Verify(f, key); rep.Problem != nil || rep.Records < 100 {
		t.Fatalf("%+v", rep)
	}
}
