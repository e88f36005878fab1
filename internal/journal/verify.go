package journal

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// Report is what Verify found.
type Report struct {
	Records     int   // records read
	Checkpoints int   // checkpoints whose MAC verified
	Sealed      bool  // the last record is a checkpoint
	Problem     error // the first break of the chain, nil when whole
}

// Verify reads a journal and checks its chain: every record's prev is the
// hash of the line before, sequence numbers count up by one, and, with
// key, every checkpoint's MAC verifies. The first problem names the line
// and what it means (a record edited, deleted, inserted or reordered); a
// journal whose last record is not a checkpoint has an unsealed tail
// (cut, or the process did not stop).
func Verify(r io.Reader, key []byte) Report {
	var rep Report
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	prevHash, prevSeq := zero, int64(0)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			rep.Problem = fmt.Errorf("line %d: not a record (edited or corrupted)", n)
			return rep
		}
		rep.Records++
		switch {
		case rec.Prev != prevHash && rec.Seq == prevSeq+1:
			rep.Problem = fmt.Errorf("line %d (seq %d): the line before it was edited", n, rec.Seq)
		case rec.Seq > prevSeq+1:
			rep.Problem = fmt.Errorf("line %d (seq %d): %d record(s) before it deleted", n, rec.Seq, rec.Seq-prevSeq-1)
		case rec.Seq <= prevSeq:
			rep.Problem = fmt.Errorf("line %d (seq %d): inserted or out of order (after seq %d)", n, rec.Seq, prevSeq)
		case rec.Prev != prevHash:
			rep.Problem = fmt.Errorf("line %d (seq %d): does not follow the line before it", n, rec.Seq)
		}
		if rep.Problem != nil {
			return rep
		}
		rep.Sealed = rec.Event == EventCheckpoint
		if rep.Sealed && key != nil {
			if !hmac.Equal([]byte(sign(key, rec)), []byte(rec.MAC)) {
				rep.Problem = fmt.Errorf("line %d (seq %d): checkpoint does not verify (forged, or another key)", n, rec.Seq)
				return rep
			}
			rep.Checkpoints++
		}
		sum := sha256.Sum256(bytes.TrimRight(line, "\r"))
		prevHash, prevSeq = hex.EncodeToString(sum[:]), rec.Seq
	}
	if err := sc.Err(); err != nil {
		rep.Problem = err
	}
	return rep
}
