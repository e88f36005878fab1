package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// fileField is a config key naming a file.
type fileField struct {
	path  string  // key path, for problems
	file  *string // the value, resolved in place
	reads bool    // Rampart reads it (it must exist); false: Rampart may create it
}

// fileFields lists every key that names a file: the one list that path
// resolution and the load-time checks share.
func (c *Config) fileFields() []fileField {
	var ff []fileField
	add := func(path string, file *string, reads bool) { ff = append(ff, fileField{path, file, reads}) }
	access := func(base string, a *Access) {
		if a == nil {
			return
		}
		for i := range a.AllowFiles {
			add(fmt.Sprintf("%s.access.allow_files[%d]", base, i), &a.AllowFiles[i], true)
		}
		for i := range a.DenyFiles {
			add(fmt.Sprintf("%s.access.deny_files[%d]", base, i), &a.DenyFiles[i], true)
		}
	}
	for i := range c.Listeners {
		access(fmt.Sprintf("listeners[%d]", i), c.Listeners[i].Access)
	}
	for i := range c.Routes {
		access(fmt.Sprintf("routes[%d]", i), c.Routes[i].Access)
	}
	if c.Admin != nil {
		access("admin", c.Admin.Access)
		if t := c.Admin.TLS; t != nil {
			add("admin.tls.cert_file", &t.CertFile, true)
			add("admin.tls.key_file", &t.KeyFile, true)
			add("admin.tls.client_ca_file", &t.ClientCAFile, true)
		}
	}
	for i := range c.Listeners {
		if t := c.Listeners[i].TLS; t != nil {
			listenerTLSFiles(add, fmt.Sprintf("listeners[%d].tls.", i), t)
		}
	}
	for i := range c.Upstreams {
		t := &c.Upstreams[i].TLS
		base := fmt.Sprintf("upstreams[%d].tls.", i)
		add(base+"ca_file", &t.CAFile, true)
		add(base+"cert_file", &t.CertFile, true)
		add(base+"key_file", &t.KeyFile, true)
	}
	for i := range c.Authn.JWT {
		j := &c.Authn.JWT[i]
		add(fmt.Sprintf("authn.jwt[%d].ca_file", i), &j.CAFile, true)
		for k := range j.Keys {
			add(fmt.Sprintf("authn.jwt[%d].keys[%d].file", i, k), &j.Keys[k].File, true)
		}
	}
	for i := range c.Authn.Introspection {
		add(fmt.Sprintf("authn.introspection[%d].ca_file", i), &c.Authn.Introspection[i].CAFile, true)
	}
	if k := c.Authn.APIKeys; k != nil {
		add("authn.api_keys.file", &k.File, false)
	}
	if s := c.State; s != nil {
		add("state.runtime_file", &s.RuntimeFile, false)
	}
	if j := c.Journal; j != nil {
		add("journal.output", &j.Output, false)
	}
	if a := c.Assertion; a != nil {
		add("assertion.key_file", &a.KeyFile, false)
		for i := range a.PreviousKeyFiles {
			add(fmt.Sprintf("assertion.previous_key_files[%d]", i), &a.PreviousKeyFiles[i], true)
		}
	}
	for i := range c.Routes {
		if o := c.Routes[i].OpenAPI; o != nil {
			add(fmt.Sprintf("routes[%d].openapi.spec", i), &o.Spec, true)
		}
	}
	return ff
}

// listenerTLSFiles lists a TLS listener's files.
func listenerTLSFiles(add func(string, *string, bool), base string, t *ListenerTLS) {
	add(base+"cert_file", &t.CertFile, true)
	add(base+"key_file", &t.KeyFile, true)
	for j := range t.Certificates {
		add(fmt.Sprintf("%scertificates[%d].cert_file", base, j), &t.Certificates[j].CertFile, true)
		add(fmt.Sprintf("%scertificates[%d].key_file", base, j), &t.Certificates[j].KeyFile, true)
	}
	add(base+"client_ca_file", &t.ClientCAFile, true)
	add(base+"client_crl_file", &t.ClientCRLFile, true)
	if a := t.ACME; a != nil {
		add(base+"acme.ca_root_file", &a.CARootFile, true)
		add(base+"acme.storage_dir", &a.StorageDir, false)
	}
}

// WatchedFiles are the files a reload re-reads that change on their own,
// without a config edit: the listeners' certificates and keys (renewed
// by cert-manager or a cron job) and client CRLs.
func (c *Config) WatchedFiles() []string {
	var out []string
	for _, l := range c.Listeners {
		if t := l.TLS; t != nil {
			out = append(out, t.CertFile, t.KeyFile, t.ClientCRLFile)
			for _, f := range t.Certificates {
				out = append(out, f.CertFile, f.KeyFile)
			}
		}
	}
	return slices.DeleteFunc(out, func(f string) bool { return f == "" })
}

// resolvePaths makes every relative file path relative to the config
// file's directory (not to the working directory, which a service
// manager chooses), and absolute.
func (c *Config) resolvePaths() {
	if c.File == "" {
		return
	}
	dir := filepath.Dir(c.File)
	for _, f := range c.fileFields() {
		if *f.file == "" || filepath.IsAbs(*f.file) {
			continue
		}
		if abs, err := filepath.Abs(filepath.Join(dir, *f.file)); err == nil {
			*f.file = abs
		}
	}
}

// validateFiles checks, at load, that every file the config names for
// reading exists and can be read, so that a missing certificate is
// reported with the other problems, at its line (contents are checked
// when the plan is compiled).
func (c *Config) validateFiles(p *Problems) {
	for _, f := range c.fileFields() {
		if f.reads {
			checkReadable(p, f.path, *f.file)
		}
	}
}

// checkReadable reports a named file that cannot be opened for reading.
func checkReadable(p *Problems, path, file string) {
	if file == "" {
		return
	}
	f, err := os.Open(file)
	if err == nil {
		st, serr := f.Stat()
		f.Close()
		if serr == nil && st.IsDir() {
			p.Add(path, "%s is a directory, not a file", file)
		}
		return
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Add(path, "%s does not exist", file)
	case errors.Is(err, fs.ErrPermission):
		p.Add(path, "%s cannot be read (permission denied)", file)
	default:
		p.Add(path, "cannot read %s: %v", file, err)
	}
}
