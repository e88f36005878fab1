// Package sariftest validates SARIF logs against the SARIF 2.1.0 JSON
// schema in tests. The schema file is the OASIS SARIF 2.1.0 schema
// (sarif-2.1.0-rtm.5.json) as published by SchemaStore and shipped in
// the npm package @microsoft/jest-sarif 1.0.0-beta.0 (MIT).
package sariftest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed sarif-2.1.0-rtm.5.json
var schema []byte

// schemaID is the schema's own id; it is registered under it so that
// nothing is fetched.
const schemaID = "https://raw.githubusercontent.com/schemastore/schemastore/master/src/schemas/json/sarif-2.1.0-rtm.5.json"

// Validate fails t unless log is a valid SARIF 2.1.0 log.
func Validate(t testing.TB, log []byte) {
	t.Helper()
	if err := Check(log); err != nil {
		t.Fatalf("not a valid SARIF 2.1.0 log: %v\n%s", err, log)
	}
}

// Check validates log against the schema.
func Check(log []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaID, doc); err != nil {
		return err
	}
	sch, err := c.Compile(schemaID)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(log))
	if err != nil {
		return err
	}
	if err := sch.Validate(v); err != nil {
		return err
	}
	var l struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(log, &l); err != nil || l.Version != "2.1.0" {
		return errVersion
	}
	return nil
}

type versionError struct{}

func (versionError) Error() string { return `version is not "2.1.0"` }

var errVersion error = versionError{}
