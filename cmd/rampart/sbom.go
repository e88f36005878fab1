package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sort"
)

// cmdVersion is `rampart version [--sbom]`: the release, or a CycloneDX
// 1.5 software bill of materials of the modules compiled into this binary
// (from its build info), for scanners matching advisories.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	if len(args) != 1 || args[0] != "--sbom" {
		fmt.Fprintln(stderr, "usage: rampart version [--sbom]")
		return 2
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fail(stderr, fmt.Errorf("this binary carries no build info"))
	}
	e := json.NewEncoder(stdout)
	e.SetIndent("", "  ")
	return exitOn(e.Encode(sbom(bi)), stderr)
}

// sbom is the CycloneDX document of a build: the main module as the
// subject, every module as a library component with its package URL and
// Go checksum, the toolchain and build settings as properties. It is
// deterministic: the same binary gives the same document.
func sbom(bi *debug.BuildInfo) map[string]any {
	purl := func(path, v string) string { return "pkg:golang/" + path + "@" + v }
	main := map[string]any{"type": "application", "name": "rampart", "version": version,
		"purl": purl(bi.Main.Path, version), "bom-ref": purl(bi.Main.Path, version)}
	var comps []map[string]any
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		c := map[string]any{"type": "library", "name": m.Path, "version": m.Version, "purl": purl(m.Path, m.Version), "bom-ref": purl(m.Path, m.Version)}
		if m.Sum != "" {
			c["properties"] = []map[string]string{{"name": "go:module:sum", "value": m.Sum}}
		}
		comps = append(comps, c)
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i]["name"].(string) < comps[j]["name"].(string) })
	props := []map[string]string{{"name": "go:toolchain", "value": runtime.Version()}}
	for _, s := range bi.Settings {
		props = append(props, map[string]string{"name": "go:build:" + s.Key, "value": s.Value})
	}
	id, _ := json.Marshal([]any{bi.Main, bi.Deps, bi.Settings})
	sum := sha256.Sum256(id)
	return map[string]any{
		"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
		"serialNumber": fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16]),
		"metadata":     map[string]any{"component": main, "properties": props, "tools": []map[string]string{{"name": "rampart version --sbom", "version": version}}},
		"components":   comps,
	}
}
