package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// environment is the source of ${env:} and ${file:} values (swapped in tests).
type environment interface {
	LookupEnv(name string) (string, bool)
	ReadFile(path string) ([]byte, error)
}

type osEnv struct{}

func (osEnv) LookupEnv(name string) (string, bool) { return os.LookupEnv(name) }
func (osEnv) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// deferredEnv answers every reference with a placeholder
// (LoadOptions.DeferSecrets).
type deferredEnv struct{}

func (deferredEnv) LookupEnv(name string) (string, bool) { return placeholder("env:" + name), true }
func (deferredEnv) ReadFile(path string) ([]byte, error) {
	return []byte(placeholder("file:" + path)), nil
}

// placeholder stands for the secret a reference names: 64 hex digits
// (a valid key of every length the config asks for), distinct per
// reference so that checks comparing secrets see them apart.
func placeholder(ref string) string {
	sum := sha256.Sum256([]byte("rampart deferred secret " + ref))
	return hex.EncodeToString(sum[:])
}

// errVaultPending marks a ${vault:} reference: read from Vault once the
// whole config (and its vault section) is decoded.
var errVaultPending = errors.New("vault reference pending")

// maxSecretFile bounds ${file:} reads: a secret is small, and a reference to
// /dev/zero or a log file must not exhaust memory.
const maxSecretFile = 64 << 10

// resolveSecret resolves "${env:NAME}" or "${file:/abs/path}". Anything else
// is a literal value (ref == ""). A value that merely looks like a reference
// but is malformed is an error, never silently a literal.
func resolveSecret(raw string, env environment) (value, ref string, err error) {
	if i := strings.Index(raw, "${"); i > 0 {
		// A fixed prefix and then one reference ("Bearer ${env:TOKEN}"):
		// the reference must end the value.
		v, ref, err := resolveSecret(raw[i:], env)
		if errors.Is(err, errVaultPending) {
			return raw[:i], ref, err // the prefix, resolved with the value later
		}
		if err != nil {
			return "", "", err
		}
		return raw[:i] + v, ref, nil
	} else if i < 0 {
		return raw, "", nil
	}
	inner, ok := strings.CutSuffix(raw[2:], "}")
	if !ok || strings.Contains(inner, "}") {
		return "", "", fmt.Errorf("%w %q: one reference, ending the value: \"${env:NAME}\" or \"Bearer ${env:NAME}\"", ErrSecretRef, raw)
	}
	kind, arg, ok := strings.Cut(inner, ":")
	if !ok || arg == "" {
		return "", "", fmt.Errorf("%w %q: expected ${env:NAME} or ${file:/path}", ErrSecretRef, raw)
	}
	switch kind {
	case "vault":
		return "", "vault:" + arg, errVaultPending
	case "env":
		v, ok := env.LookupEnv(arg)
		if !ok {
			return "", "", fmt.Errorf("%w: environment variable %s is not set", ErrSecretRef, arg)
		}
		if v == "" {
			return "", "", fmt.Errorf("%w: environment variable %s is empty", ErrSecretRef, arg)
		}
		return v, "env:" + arg, nil
	case "file":
		if !strings.HasPrefix(arg, "/") {
			return "", "", fmt.Errorf("%w: ${file:%s} must be an absolute path", ErrSecretRef, arg)
		}
		b, err := env.ReadFile(arg)
		if err != nil {
			return "", "", fmt.Errorf("%w: ${file:%s}: %v", ErrSecretRef, arg, err)
		}
		if len(b) > maxSecretFile {
			return "", "", fmt.Errorf("%w: ${file:%s} is larger than %d bytes", ErrSecretRef, arg, maxSecretFile)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", "", fmt.Errorf("%w: ${file:%s} is empty", ErrSecretRef, arg)
		}
		return v, "file:" + arg, nil
	default:
		return "", "", fmt.Errorf("%w %q: unknown source %q (use env, file or vault)", ErrSecretRef, raw, kind)
	}
}
