package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time span written as a Go duration ("250ms", "5s", "2h")
// or with a day suffix ("30d").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) decodeYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"5s\", got %s", describe(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Go duration, also accepting a whole number of days
// ("30d"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use a unit: \"500ms\", \"5s\", \"2m\")", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return v, nil
}

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a size in bytes, written as an integer or with a binary unit
// ("64KiB", "1MiB"); decimal units ("1MB") are accepted too.
type ByteSize int64

func (b *ByteSize) decodeYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as \"1MiB\", got %s", describe(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "65536", "64KiB", "1MiB", "1MB".
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<50)/mult {
		return 0, fmt.Errorf("invalid size %q (use bytes or a unit: \"64KiB\", \"1MiB\")", s)
	}
	return v * mult, nil
}

// Secret is a credential. In a config file it should be a reference,
// ${env:NAME} or ${file:/path}, resolved when the config is loaded; a literal
// value works but `rampart check` warns about it. A Secret never prints its
// value: String, GoString and LogValue all give REDACTED.
type Secret struct {
	value   string
	ref     string
	literal bool
	pending bool   // a ${vault:} reference not read yet
	prefix  string // a fixed prefix before a pending reference
}

// ErrSecretRef is returned for a malformed or unresolvable secret reference.
var ErrSecretRef = errors.New("secret reference")

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the secret holds a value.
func (s Secret) IsSet() bool { return s.value != "" }

// Literal reports whether the value was written directly in the config.
func (s Secret) Literal() bool { return s.literal }

// Ref returns the reference the value came from ("env:NAME"), if any.
func (s Secret) Ref() string { return s.ref }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string { return "REDACTED" }

// GoString implements fmt.GoStringer without revealing the value.
func (s Secret) GoString() string { return "REDACTED" }

// LogValue implements slog.LogValuer without revealing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// fill completes a pending reference with the value read for it.
func (s *Secret) fill(v string) { s.value, s.pending = s.prefix+v, false }

// NewSecret wraps a value obtained outside a config file.
func NewSecret(v string) Secret { return Secret{value: v} }

func (s *Secret) decodeYAML(n *yaml.Node) error { return s.decodeFrom(n, osEnv{}) }

// decodeFrom reads a secret, resolving its reference in env.
func (s *Secret) decodeFrom(n *yaml.Node, env environment) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a secret reference such as \"${env:NAME}\", got %s", describe(n))
	}
	v, ref, err := resolveSecret(n.Value, env)
	if errors.Is(err, errVaultPending) {
		*s = Secret{ref: ref, prefix: v, pending: true}
		return nil
	}
	if err != nil {
		return err
	}
	*s = Secret{value: v, ref: ref, literal: ref == ""}
	return nil
}
