package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/rampart-gw/rampart/internal/config"
)

// manifests decodes every document of deploy/kubernetes strictly (an
// unknown field is an error) into its k8s.io/api type.
func manifests(t *testing.T) []any {
	t.Helper()
	files, _ := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	var out []any
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(raw), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			js, err := yaml.ToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var head struct{ APIVersion, Kind string }
			json.Unmarshal(js, &head)
			obj := map[string]any{
				"v1/Namespace": &corev1.Namespace{}, "v1/ConfigMap": &corev1.ConfigMap{}, "v1/Service": &corev1.Service{},
				"apps/v1/Deployment": &appsv1.Deployment{}, "policy/v1/PodDisruptionBudget": &policyv1.PodDisruptionBudget{},
				"networking.k8s.io/v1/NetworkPolicy": &networkingv1.NetworkPolicy{},
			}[head.APIVersion+"/"+head.Kind]
			if obj == nil {
				t.Fatalf("%s document %d: unexpected %s %s", f, i, head.APIVersion, head.Kind)
			}
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, head.Kind, err)
			}
			out = append(out, obj)
		}
	}
	return out
}

// TestKubernetesManifests: every pod passes the restricted Pod Security
// Standard (k8s.io/pod-security-admission), the gateway runs several
// replicas with a disruption budget, probes on /readyz and /healthz and
// secrets only by reference, every pod is under a NetworkPolicy, the
// namespace enforces "restricted", and the ConfigMap's config loads.
func TestKubernetesManifests(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	var deps []*appsv1.Deployment
	var pdbs []*policyv1.PodDisruptionBudget
	var netpols []*networkingv1.NetworkPolicy
	var cfg string
	for _, o := range manifests(t) {
		switch o := o.(type) {
		case *corev1.Namespace:
			if o.Labels[psaapi.EnforceLevelLabel] != string(psaapi.LevelRestricted) {
				t.Errorf("namespace %s does not enforce restricted", o.Name)
			}
		case *appsv1.Deployment:
			deps = append(deps, o)
			for _, r := range eval.EvaluatePod(restricted, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec) {
				if !r.Allowed {
					t.Errorf("deployment %s: restricted: %s: %s", o.Name, r.ForbiddenReason, r.ForbiddenDetail)
				}
			}
			checkSecretsByReference(t, o)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, o)
		case *networkingv1.NetworkPolicy:
			netpols = append(netpols, o)
		case *corev1.ConfigMap:
			cfg = o.Data["rampart.yaml"]
		}
	}
	for _, d := range deps {
		podLabels := labels.Set(d.Spec.Template.Labels)
		covered := false
		for _, np := range netpols {
			sel, _ := metaSelector(np.Spec.PodSelector.MatchLabels)
			covered = covered || sel.Matches(podLabels)
		}
		if !covered {
			t.Errorf("deployment %s: no NetworkPolicy selects its pods", d.Name)
		}
		if d.Name != "rampart" {
			continue
		}
		if *d.Spec.Replicas < 2 {
			t.Errorf("rampart runs %d replica(s)", *d.Spec.Replicas)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Error("rampart's probes are not /readyz and /healthz")
		}
		budgeted := false
		for _, p := range pdbs {
			sel, _ := metaSelector(p.Spec.Selector.MatchLabels)
			budgeted = budgeted || sel.Matches(podLabels)
		}
		if !budgeted {
			t.Error("no PodDisruptionBudget for rampart")
		}
	}
	checkConfigLoads(t, cfg)
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	return labels.SelectorFromSet(labels.Set(m)), nil
}

// checkSecretsByReference refuses a literal value for an environment
// variable that names a secret.
func checkSecretsByReference(t *testing.T, d *appsv1.Deployment) {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if regexp.MustCompile(`(?i)key|token|password|secret`).MatchString(e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("deployment %s: %s is not a Secret reference", d.Name, e.Name)
			}
		}
	}
}

// checkConfigLoads loads the ConfigMap's config, its files where the
// Deployment mounts them (here: the example certificates).
func checkConfigLoads(t *testing.T, cfg string) {
	if cfg == "" {
		t.Fatal("no rampart.yaml in the ConfigMap")
	}
	dir := t.TempDir()
	for name, src := range map[string]string{"tls.crt": "gateway.crt", "tls.key": "gateway.key", "ca.crt": "ca.pem"} {
		b, err := os.ReadFile(filepath.Join("../../examples/tls", src))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	t.Setenv("RAMPART_MASTER_KEY", strings.Repeat("ab", 32))
	t.Setenv("RAMPART_ADMIN_TOKEN", strings.Repeat("t", 40))
	t.Setenv("RAMPART_REDIS_PASSWORD", "redis-password-for-the-test")
	path := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(path, []byte(strings.ReplaceAll(cfg, "/etc/rampart/tls/", dir+"/")), 0o600)
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("the ConfigMap's config: %v", err)
	}
	for _, w := range c.Warnings {
		t.Logf("warning: %v", w)
	}
}
