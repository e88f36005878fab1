package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files (docs/config.schema.json, testdata)")

const schemaPath = "../../docs/config.schema.json"

// docComments maps "Type.Field" to the field's doc comment in types.go.
func docComments(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "types.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			for _, name := range fld.Names {
				out[ts.Name.Name+"."+name.Name] = strings.Join(strings.Fields(fld.Doc.Text()), " ")
			}
		}
		return false
	})
	return out
}

// generateSchema derives the JSON Schema of the config file from the Go
// types, their yaml/required/enum tags and their doc comments.
func generateSchema(t *testing.T) []byte {
	docs := docComments(t)
	defs := map[string]any{}
	var gen func(rt reflect.Type) map[string]any
	gen = func(rt reflect.Type) map[string]any {
		switch rt {
		case reflect.TypeOf(Authorize{}):
			// Recursive (methods hold policies) and with a scalar
			// shorthand: defined once under $defs.
			if _, done := defs["authorize"]; !done {
				defs["authorize"] = nil
				obj := genStruct(rt, gen, docs)
				defs["authorize"] = map[string]any{"oneOf": []any{map[string]any{"const": "any_authenticated"}, obj}}
			}
			return map[string]any{"$ref": "#/$defs/authorize"}
		case reflect.TypeOf(Duration(0)):
			return map[string]any{"type": "string", "pattern": `^(0|[0-9]+d|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`}
		case reflect.TypeOf(ByteSize(0)):
			return map[string]any{"oneOf": []any{
				map[string]any{"type": "integer", "minimum": 0},
				map[string]any{"type": "string", "pattern": `^[0-9]+ ?(B|KB|MB|GB|KiB|MiB|GiB)?$`},
			}}
		case reflect.TypeOf(Secret{}):
			return map[string]any{"type": "string", "description": "A secret: ${env:NAME} or ${file:/absolute/path}."}
		}
		switch rt.Kind() {
		case reflect.Pointer:
			return gen(rt.Elem())
		case reflect.Bool:
			return map[string]any{"type": "boolean"}
		case reflect.Int, reflect.Int64:
			return map[string]any{"type": "integer"}
		case reflect.Float64:
			return map[string]any{"type": "number"}
		case reflect.String:
			return map[string]any{"type": "string"}
		case reflect.Slice:
			return map[string]any{"type": "array", "items": gen(rt.Elem())}
		case reflect.Map:
			return map[string]any{"type": "object", "additionalProperties": gen(rt.Elem())}
		case reflect.Struct:
			return genStruct(rt, gen, docs)
		}
		t.Fatalf("no schema for %s", rt)
		return nil
	}
	root := gen(reflect.TypeOf(Config{}))
	root["$defs"] = defs
	return encodeSchema(t, root)
}

func genStruct(rt reflect.Type, gen func(reflect.Type) map[string]any, docs map[string]string) map[string]any {
	props := map[string]any{}
	var required []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		s := gen(f.Type)
		if d := docs[rt.Name()+"."+f.Name]; d != "" {
			s["description"] = d
		}
		if e := f.Tag.Get("enum"); e != "" {
			vals := []any{}
			for _, v := range strings.Split(e, ",") {
				vals = append(vals, v)
				if n, err := strconv.Atoi(v); err == nil {
					vals = append(vals, n) // YAML reads 503 as a number
				}
			}
			if s["type"] == "array" {
				s["items"] = map[string]any{"enum": vals}
			} else {
				s["enum"] = vals
			}
		}
		if f.Tag.Get("required") == "true" {
			required = append(required, name)
		}
		props[name] = s
	}
	out := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func encodeSchema(t *testing.T, root map[string]any) []byte {
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://github.com/rampart-gw/rampart/docs/config.schema.json"
	root["title"] = "Rampart configuration"
	root["description"] = "Rampart gateway config file (YAML). Generated from internal/config/types.go by `go test ./internal/config -run TestSchemaInSync -update`."
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSchemaInSync keeps docs/config.schema.json equal to what the Go types
// say. Regenerate with -update.
func TestSchemaInSync(t *testing.T) {
	want := generateSchema(t)
	if *update {
		if err := os.WriteFile(schemaPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/config.schema.json is out of date with internal/config/types.go; run: go test ./internal/config -run TestSchemaInSync -update")
	}
}

// TestExamplesLoad loads every file under examples/ with the real loader
// (the embedded quickstart config is loaded by the quickstart package's
// test), and validates each against the published JSON Schema, so documentation can never drift from the code.
func TestExamplesLoad(t *testing.T) {
	t.Setenv("RAMPART_EXAMPLE_API_KEY", "example-upstream-key-0123456789abcdef")
	t.Setenv("RAMPART_EXAMPLE_SIEM_TOKEN", "Bearer example-siem-token")
	t.Setenv("RAMPART_EXAMPLE_ADMIN_TOKEN", "example-admin-token-0123456789abcdef")
	t.Setenv("RAMPART_EXAMPLE_METRICS_TOKEN", "example-metrics-token-0123456789abcdef")
	t.Setenv("RAMPART_EXAMPLE_REDIS_PASSWORD", "example-redis-password")
	t.Setenv("RAMPART_EXAMPLE_JOURNAL_KEY", "example-journal-checkpoint-key-0123456789")
	t.Setenv("RAMPART_EXAMPLE_MASTER_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			for _, w := range cfg.Warnings {
				t.Errorf("example has a warning: %v", w)
			}
			raw, _ := os.ReadFile(f)
			var doc any
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			doc = jsonCompatible(doc)
			if err := sch.Validate(doc); err != nil {
				t.Fatalf("schema: %v", err)
			}
		})
	}
}

// jsonCompatible converts YAML-decoded values to what the JSON Schema
// validator expects (map[string]any, float64/json.Number for numbers).
func jsonCompatible(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonCompatible(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonCompatible(e)
		}
		return x
	case int:
		return json.Number(strconv.Itoa(x))
	}
	return v
}
