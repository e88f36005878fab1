package waf

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"rsc.io/binaryregexp"
)

// The CRS's @rx rules run through rampart's own operator: the same regular
// expression, compiled as Coraza compiles it (dot-all and multi-line), the
// same captures, with two shortcuts that cannot change an answer:
//
//   - a prefilter (prefilter.go) skips the expression when the input lacks
//     every literal some match would need;
//   - when the rule captures, the expression first runs without captures
//     (cheaper), and only a match runs again to record them.
//
// The CRS rule files are read through prefilteredCRS, which names this
// operator in place of @rx; Coraza's own @rx stays as it is (for other
// rules, and as the reference the differential tests compare with).
const rxOperator = "rampart_rx"

var registerOnce sync.Once

// registerOperators adds rampart's operators to Coraza's registry (a
// process-wide table in Coraza; they are added once, under names of
// their own, and never changed).
func registerOperators() {
	registerOnce.Do(func() { plugins.RegisterOperator(rxOperator, newRX) })
}

// rx is the @rx operator of the rules with one expression: compiled
// once and shared by every rule (and WAF) that names it.
type rx struct {
	re  *regexp.Regexp
	pre *prefilter
	bin *binaryregexp.Regexp // expressions matching arbitrary bytes
}

func newRX(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	if o.Memoizer == nil {
		return compileRX(o.Arguments)
	}
	c, err := o.Memoizer.Do("rampart_rx:"+o.Arguments, func() (any, error) { return compileRX(o.Arguments) })
	if err != nil {
		return nil, err
	}
	return c.(*rx), nil
}

// compileRX compiles an expression as Coraza's @rx does: dot-all and
// multi-line, or, when it matches bytes that are not UTF-8, as a byte
// expression (without prefilter).
func compileRX(expr string) (*rx, error) {
	if matchesArbitraryBytes(expr) {
		re, err := binaryregexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		return &rx{bin: re}, nil
	}
	pattern := "(?sm)" + expr
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return &rx{re: re, pre: newPrefilter(pattern)}, nil
}

// Evaluate implements plugintypes.Operator with Coraza's @rx semantics:
// up to ten captures (the whole match and nine groups), a group that did
// not take part captured as "".
func (o *rx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.bin != nil {
		return o.evaluateBytes(tx, value)
	}
	if !o.pre.maybe(value) {
		return false
	}
	if !o.re.MatchString(value) {
		return false
	}
	if !tx.Capturing() {
		return true
	}
	m := o.re.FindStringSubmatchIndex(value)
	for i := 0; i < len(m)/2; i++ {
		if i == 9 {
			return true
		}
		if m[2*i] >= 0 {
			tx.CaptureField(i, value[m[2*i]:m[2*i+1]])
		} else {
			tx.CaptureField(i, "")
		}
	}
	return true
}

func (o *rx) evaluateBytes(tx plugintypes.TransactionState, value string) bool {
	if !tx.Capturing() {
		return o.bin.MatchString(value)
	}
	m := o.bin.FindStringSubmatch(value)
	if len(m) == 0 {
		return false
	}
	for i, c := range m {
		if i == 9 {
			return true
		}
		tx.CaptureField(i, c)
	}
	return true
}

// matchesArbitraryBytes reports an expression whose \xNN escapes, decoded,
// are not valid UTF-8 (Coraza's test for a byte expression).
func matchesArbitraryBytes(expr string) bool {
	decoded := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '\\' || i+3 >= len(expr) || expr[i+1] != 'x' {
			if c == '\\' && i+3 >= len(expr) {
				decoded = append(decoded, expr[i:]...)
				break
			}
			decoded = append(decoded, c)
			continue
		}
		sub, advance := expr[i:], 3
		if len(sub) >= 6 && sub[2] == '{' {
			if end := strings.IndexByte(sub, '}'); end != -1 {
				sub, advance = `\x`+sub[3:end], end
			}
		}
		v, multibyte, _, err := strconv.UnquoteChar(sub, 0)
		if err != nil || multibyte {
			decoded = append(decoded, c)
			continue
		}
		decoded = append(decoded, byte(v))
		i += advance
	}
	return !utf8.Valid(decoded)
}

// prefilteredCRS is the CRS rule tree with its request rule files naming
// rampart's @rx operator. Every other file is read unchanged.
type prefilteredCRS struct{ fs.FS }

func (p prefilteredCRS) Open(name string) (fs.File, error) {
	f, err := p.FS.Open(name)
	if err != nil || !isRequestRuleFile(name) {
		return f, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	b = useRampartRX(b)
	return &memFile{Reader: bytes.NewReader(b), name: path.Base(name), size: int64(len(b)), mod: st.ModTime()}, nil
}

func isRequestRuleFile(name string) bool {
	base := path.Base(name)
	return strings.HasPrefix(base, "REQUEST-") && strings.HasSuffix(base, ".conf")
}

// useRampartRX renames the @rx operator ("@rx ..." and "!@rx ...") of
// every rule in a rule file.
func useRampartRX(conf []byte) []byte {
	conf = bytes.ReplaceAll(conf, []byte(`"@rx `), []byte(`"@`+rxOperator+` `))
	return bytes.ReplaceAll(conf, []byte(`"!@rx `), []byte(`"!@`+rxOperator+` `))
}

// memFile is a rewritten rule file.
type memFile struct {
	*bytes.Reader
	name string
	size int64
	mod  time.Time
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *memFile) Close() error               { return nil }
func (f *memFile) Name() string               { return f.name }
func (f *memFile) Size() int64                { return f.size }
func (f *memFile) Mode() fs.FileMode          { return 0o444 }
func (f *memFile) ModTime() time.Time         { return f.mod }
func (f *memFile) IsDir() bool                { return false }
func (f *memFile) Sys() any                   { return nil }
