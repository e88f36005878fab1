// Package docs checks that the documentation lists what the code has:
// every decision code a response can carry, every top-level config key,
// every command. The lists are gathered from the code, so they cannot
// drift apart again.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/speclint"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goFiles parses every non-test Go file under dir.
func goFiles(t *testing.T, dir string) []*ast.File {
	t.Helper()
	var files []*ast.File
	fset := token.NewFileSet()
	err := filepath.Walk(filepath.Join("..", "..", dir), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var codeRE = regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)

// codeArgs are the functions that answer with a decision code, and the
// position of the code among their arguments.
var codeArgs = map[string]int{"Deny": 1, "DenyErr": 1, "problem": 2}

// decisionCodes gathers the codes a refusal can carry: constants whose
// name starts with prefix, and literal codes passed to the functions that
// answer with one (pipeline.Deny and DenyErr, the admin listener's
// problem).
func decisionCodes(t *testing.T, prefix string) []string {
	set := map[string]bool{}
	for _, f := range goFiles(t, "internal") {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if strings.HasPrefix(name.Name, prefix) && i < len(n.Values) {
						if s, ok := stringLit(n.Values[i]); ok && codeRE.MatchString(s) {
							set[s] = true
						}
					}
				}
			case *ast.CallExpr:
				if i, ok := codeArgs[funcName(n.Fun)]; ok && prefix == "Code" && len(n.Args) > i {
					if s, ok := stringLit(n.Args[i]); ok && codeRE.MatchString(s) {
						set[s] = true
					}
				}
			}
			return true
		})
	}
	var out []string
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("found only %d %s* codes: the scan is broken", len(out), prefix)
	}
	return out
}

func funcName(e ast.Expr) string {
	switch f := e.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// TestEveryDecisionCodeDocumented: docs/security.md lists every code a
// response can carry, and docs/authentication.md every reason an
// authentication failure is logged with.
func TestEveryDecisionCodeDocumented(t *testing.T) {
	for _, tc := range []struct{ prefix, doc string }{{"Code", "docs/security.md"}, {"Reason", "docs/authentication.md"}} {
		doc := read(t, tc.doc)
		for _, c := range decisionCodes(t, tc.prefix) {
			if !strings.Contains(doc, "`"+c+"`") {
				t.Errorf("%s does not list `%s`", tc.doc, c)
			}
		}
	}
}

// TestEveryTopLevelKeyDocumented: docs/config.md's top-level table has a
// row for every top-level config key.
func TestEveryTopLevelKeyDocumented(t *testing.T) {
	doc := read(t, "docs/config.md")
	ty := reflect.TypeOf(config.Config{})
	n := 0
	for i := 0; i < ty.NumField(); i++ {
		key, _, _ := strings.Cut(ty.Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		n++
		if !strings.Contains(doc, "| `"+key+"` |") {
			t.Errorf("docs/config.md's top-level table lacks `%s`", key)
		}
	}
	if n < 10 {
		t.Fatalf("found only %d top-level keys: the scan is broken", n)
	}
}

// TestEveryCommandDocumented: each command of cmd/rampart appears in the
// README or docs/operations.md.
func TestEveryCommandDocumented(t *testing.T) {
	docs := read(t, "README.md") + read(t, "docs/operations.md")
	var cmds []string
	for _, f := range goFiles(t, "cmd/rampart") {
		ast.Inspect(f, func(n ast.Node) bool {
			fd, ok := n.(*ast.FuncDecl)
			if !ok || fd.Name.Name != "run" {
				return true
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				if cc, ok := n.(*ast.CaseClause); ok {
					for _, e := range cc.List {
						if s, ok := stringLit(e); ok && regexp.MustCompile(`^[a-z]+$`).MatchString(s) && s != "help" {
							cmds = append(cmds, s)
						}
					}
				}
				return true
			})
			return false
		})
	}
	if len(cmds) < 6 {
		t.Fatalf("found only %d commands: the scan is broken", len(cmds))
	}
	for _, c := range cmds {
		if !regexp.MustCompile(`rampart ` + c + `\b`).MatchString(docs) {
			t.Errorf("neither README.md nor docs/operations.md shows `rampart %s`", c)
		}
	}
}

// TestCitedPathsExist: every repository path the documentation cites
// (`internal/...`, `examples/...`, links to files) exists.
func TestCitedPathsExist(t *testing.T) {
	docs, _ := filepath.Glob("../../docs/*.md")
	docs = append(docs, "../../README.md", "../../CONTRIBUTING.md", "../../BENCHMARKS.md", "../../examples/README.md")
	pathRE := regexp.MustCompile("`((?:internal|cmd|examples|bench|scripts|test|docs|verify)/[A-Za-z0-9_./-]+)`|\\]\\(((?:\\.\\./)?[A-Za-z0-9_./-]+\\.(?:md|json|yaml|go))\\)")
	n := 0
	for _, d := range docs {
		raw, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pathRE.FindAllStringSubmatch(string(raw), -1) {
			var p string
			if m[1] != "" {
				p = filepath.Join("../..", m[1])
			} else {
				p = filepath.Join(filepath.Dir(d), m[2])
			}
			p = strings.TrimSuffix(p, "/")
			if strings.ContainsAny(p, "*{") {
				continue
			}
			n++
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s cites %s, which does not exist", d, strings.TrimPrefix(p, "../../"))
			}
		}
	}
	if n < 10 {
		t.Fatalf("found only %d cited paths: the scan is broken", n)
	}
}

// TestEveryLintRuleDocumented: docs/api-docs.md lists every rule of the
// spec linter.
func TestEveryLintRuleDocumented(t *testing.T) {
	doc := read(t, "docs/api-docs.md")
	for _, r := range speclint.Rules() {
		if !strings.Contains(doc, "`"+r.ID+"`") {
			t.Errorf("docs/api-docs.md does not list `%s`", r.ID)
		}
	}
}
