// Package sarif writes SARIF 2.1.0 logs (the OASIS Static Analysis
// Results Interchange Format), the one format in which Rampart's
// commands hand findings to code-scanning tools: GitHub code scanning
// and other SARIF viewers show each result on the line it names. Only
// the parts of the format those tools read are modelled.
package sarif

import (
	"encoding/json"
	"io"
)

// Version is the SARIF version written; SchemaURI its JSON schema.
const (
	Version   = "2.1.0"
	SchemaURI = "https://json.schemastore.org/sarif-2.1.0.json"
)

// Log is a SARIF log: one run per tool invocation.
type Log struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []Run  `json:"runs"`
}

// Run is one tool's results.
type Run struct {
	Tool    Tool     `json:"tool"`
	Results []Result `json:"results"`
}

// Tool names the tool that produced a run.
type Tool struct {
	Driver Driver `json:"driver"`
}

// Driver is the tool itself and the rules it checks.
type Driver struct {
	Name           string `json:"name"`
	Version        string `json:"version,omitempty"`
	InformationURI string `json:"informationUri,omitempty"`
	Rules          []Rule `json:"rules"`
}

// Rule describes one rule a result may cite.
type Rule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name,omitempty"`
	ShortDescription     Message        `json:"shortDescription"`
	FullDescription      *Message       `json:"fullDescription,omitempty"`
	Help                 *Message       `json:"help,omitempty"`
	HelpURI              string         `json:"helpUri,omitempty"`
	DefaultConfiguration Configuration  `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties,omitempty"`
}

// Message is plain text, optionally with a Markdown form.
type Message struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

// Configuration is a rule's default reporting level.
type Configuration struct {
	Level string `json:"level"`
}

// Levels of a result: error, warning or note.
const (
	LevelError   = "error"
	LevelWarning = "warning"
	LevelNote    = "note"
)

// Result is one finding.
type Result struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             Message           `json:"message"`
	Locations           []Location        `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints,omitempty"`
	Suppressions        []Suppression     `json:"suppressions,omitempty"`
}

// Location is where a result was found: a file region and, optionally,
// a logical name (a key path, a JSON pointer).
type Location struct {
	PhysicalLocation PhysicalLocation  `json:"physicalLocation"`
	LogicalLocations []LogicalLocation `json:"logicalLocations,omitempty"`
}

// PhysicalLocation is a region of a file.
type PhysicalLocation struct {
	ArtifactLocation ArtifactLocation `json:"artifactLocation"`
	Region           Region           `json:"region"`
}

// ArtifactLocation names a file by URI (a relative path is relative to
// the repository root for code-scanning tools).
type ArtifactLocation struct {
	URI string `json:"uri"`
}

// Region is a line, optionally a column (both from 1).
type Region struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

// LogicalLocation names a location by a path in the document.
type LogicalLocation struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind,omitempty"`
}

// Suppression marks a result accepted by its owners: the viewer shows it
// as suppressed, with the justification.
type Suppression struct {
	Kind          string `json:"kind"` // inSource: accepted in the analysed file itself
	Justification string `json:"justification,omitempty"`
}

// At is a location at file:line (a line below 1 is written as 1: SARIF
// lines start at 1), with the logical name when there is one.
func At(file string, line, column int, name, kind string) Location {
	l := Location{PhysicalLocation: PhysicalLocation{
		ArtifactLocation: ArtifactLocation{URI: file},
		Region:           Region{StartLine: max(line, 1), StartColumn: column},
	}}
	if name != "" {
		l.LogicalLocations = []LogicalLocation{{FullyQualifiedName: name, Kind: kind}}
	}
	return l
}

// New is a log of one run of the named tool.
func New(driver Driver, results []Result) Log {
	if results == nil {
		results = []Result{}
	}
	if driver.Rules == nil {
		driver.Rules = []Rule{}
	}
	return Log{Schema: SchemaURI, Version: Version, Runs: []Run{{Tool: Tool{Driver: driver}, Results: results}}}
}

// Write writes l as indented JSON.
func Write(w io.Writer, l Log) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(l)
}
