package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a config file; anything larger is surely a mistake.
const MaxFileSize = 16 << 20

// Load reads, decodes, defaults and validates the config file at path. The
// returned error joins every problem found, each a *FieldError naming file,
// line and key path.
func Load(path string) (*Config, error) {
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
	return Parse(data, path)
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
func Parse(data []byte, file string) (*Config, error) {
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
	cfg := &Config{File: file, lines: map[string]int{"": doc.Line}}
	probs := newProblems(file, cfg.lines)
	values := newProblems(file, cfg.lines)
	d := &decoder{probs: probs, values: values, lines: cfg.lines}
	d.decode(doc, reflect.ValueOf(cfg).Elem(), "")
	if probs.Len() > 0 {
		probs.errs = append(probs.errs, values.errs...)
		return nil, probs.Err()
	}
	cfg.applyDefaults()
	cfg.validate(probs)
	probs.errs = append(probs.errs, values.errs...)
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Line returns the line of the key at path (or of its nearest parent), for
// errors found after loading, e.g. when compiling the plan.
func (c *Config) Line(path string) int { return lineOf(c.lines, path) }

// Problem returns a *FieldError located in this config.
func (c *Config) Problem(path, format string, args ...any) *FieldError {
	return &FieldError{File: c.File, Line: c.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}
