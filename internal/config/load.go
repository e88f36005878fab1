package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a config file; anything larger is surely a mistake.
const MaxFileSize = 16 << 20

// LoadOptions change how a config is judged.
type LoadOptions struct {
	// AllowLiteralSecrets turns a secret written literally in the file
	// into a warning instead of an error: for local development only
	// (`--allow-literal-secrets`).
	AllowLiteralSecrets bool
	// DeferSecrets checks secret references for form but reads none:
	// each stands for a placeholder derived from the reference, and
	// Vault is not contacted. For judging a config where its secrets
	// are not present (`rampart audit` in a pipeline); never for serving.
	DeferSecrets bool
}

// Load reads, decodes, defaults and validates the config file at path. The
// returned error joins every problem found, each a *FieldError naming file,
// line and key path.
func Load(path string) (*Config, error) { return LoadWith(path, LoadOptions{}) }

// LoadWith is Load with options.
func LoadWith(path string, o LoadOptions) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FieldError{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, &FieldError{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &FieldError{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}
	}
	if len(data) > MaxFileSize {
		return nil, &FieldError{File: path, Msg: fmt.Sprintf("config is larger than %d bytes", MaxFileSize)}
	}
	// A file written in place while it was read may be valid YAML cut
	// short (routes missing): refuse it; the write's end brings another
	// reload. Saving by rename never shows a half-written file.
	if after, err := f.Stat(); err != nil || changed(before, after) || int64(len(data)) != after.Size() {
		return nil, &FieldError{File: path, Msg: ErrChangedWhileRead.Error()}
	}
	return ParseWith(data, path, o)
}

// ErrChangedWhileRead is the message of a config file that changed while
// it was being read.
var ErrChangedWhileRead = errors.New("the file changed while it was being read; not applied (save config files by writing a new file and renaming it over the old one)")

func changed(a, b os.FileInfo) bool {
	return a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime())
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes, defaults and validates config bytes; file names the source
// in error messages.
func Parse(data []byte, file string) (*Config, error) { return ParseWith(data, file, LoadOptions{}) }

// ParseWith is Parse with options.
func ParseWith(data []byte, file string, o LoadOptions) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: file, Msg: "config is empty"}
		}
		fe := &FieldError{File: file, Msg: err.Error()}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Msg = "invalid YAML: " + m[2]
		}
		return nil, fe
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: file, Line: extra.Line, Msg: "config holds more than one YAML document"}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	sum := sha256.Sum256(data)
	cfg := &Config{File: file, Hash: hex.EncodeToString(sum[:]), lines: map[string]int{"": doc.Line}, opts: o}
	probs := newProblems(file, cfg.lines)
	values := newProblems(file, cfg.lines)
	d := &decoder{probs: probs, values: values, lines: cfg.lines, env: osEnv{}}
	if o.DeferSecrets {
		d.env = deferredEnv{}
	}
	d.decode(doc, reflect.ValueOf(cfg).Elem(), "")
	resolveVault(cfg, d.pending, probs) // with DeferSecrets: placeholders, Vault not contacted
	// Every problem at once: the checks run on what did decode, and a
	// check's finding on a key that did not decode (an unset variable
	// then "required") is left out, the decoder having said why.
	decoded := probs.errs
	checks := newProblems(file, cfg.lines)
	cfg.applyDefaults()
	cfg.resolvePaths()
	cfg.validate(checks)
	probs.errs = append(append(decoded, values.errs...), without(checks.errs, decoded)...)
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var didYouMeanRE = regexp.MustCompile(`did you mean "([a-z_]+)"`)

// without drops the problems at or below a path that has one in seen,
// or that a misspelt key in seen was meant to set.
func without(errs, seen []*FieldError) []*FieldError {
	var paths []string
	for _, s := range seen {
		paths = append(paths, s.Path)
		if m := didYouMeanRE.FindStringSubmatch(s.Msg); m != nil {
			parent := s.Path[:max(strings.LastIndex(s.Path, "."), 0)]
			if parent != "" {
				parent += "."
			}
			paths = append(paths, parent+m[1])
		}
	}
	var out []*FieldError
	for _, e := range errs {
		dup := false
		for _, sp := range paths {
			if e.Path == sp || strings.HasPrefix(e.Path, sp+".") || strings.HasPrefix(e.Path, sp+"[") {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

// Options are the options the config was loaded with (a reload uses the
// same).
func (c *Config) Options() LoadOptions { return c.opts }

// Line returns the line of the key at path (or of its nearest parent), for
// errors found after loading, e.g. when compiling the plan.
func (c *Config) Line(path string) int { return lineOf(c.lines, path) }

// Problem returns a *FieldError located in this config.
func (c *Config) Problem(path, format string, args ...any) *FieldError {
	return &FieldError{File: c.File, Line: c.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}
