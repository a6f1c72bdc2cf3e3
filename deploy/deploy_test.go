package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/rules"
)

// manifestRoot holds every Kubernetes manifest of the project.
const manifestRoot = "kubernetes"

// kustomization is the part of kustomize's Kustomization type the project
// uses; decoding it strictly makes any other field a test failure, so a new
// feature has to be added here on purpose.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// newObject maps apiVersion/kind to the Go type a document must decode into.
// A kind missing here fails the test: add it deliberately.
var newObject = map[string]func() any{
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"v1/ResourceQuota":                   func() any { return &corev1.ResourceQuota{} },
	"apps/v1/DaemonSet":                  func() any { return &appsv1.DaemonSet{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &kustomization{} },
}

// manifest is one decoded YAML document.
type manifest struct {
	File  string // relative to the deploy directory
	Index int    // document number within the file, from 0
	Kind  string // apiVersion/kind
	Obj   any    // pointer to the typed object
}

func (m manifest) String() string { return fmt.Sprintf("%s#%d (%s)", m.File, m.Index, m.Kind) }

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a multi-document YAML stream, dropping documents that
// hold only comments and blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decodeDocument decodes one document strictly into the type its
// apiVersion/kind names: unknown fields, duplicate fields, wrong types and
// unknown kinds are all errors.
func decodeDocument(doc []byte) (kind string, obj any, err error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return "", nil, fmt.Errorf("reading apiVersion/kind: %w", err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return "", nil, fmt.Errorf("document has no apiVersion or kind")
	}
	kind = tm.APIVersion + "/" + tm.Kind
	mk, ok := newObject[kind]
	if !ok {
		return kind, nil, fmt.Errorf("unknown kind %s (add it to newObject in manifests_test.go if it is intended)", kind)
	}
	obj = mk()
	// sigs.k8s.io/yaml.UnmarshalStrict decodes with encoding/json, which
	// matches field names case-insensitively: "hostPid" would silently set
	// hostPID, while the API server drops it. So convert to JSON (rejecting
	// duplicate keys) and decode with the API machinery's case-sensitive,
	// strict decoder.
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return kind, nil, fmt.Errorf("converting %s to JSON: %w", kind, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return kind, nil, fmt.Errorf("decoding %s: %w", kind, err)
	}
	if len(strictErrs) > 0 {
		return kind, nil, fmt.Errorf("decoding %s strictly: %w", kind, errors.Join(strictErrs...))
	}
	return kind, obj, nil
}

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir(manifestRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
		case ".json":
			t.Errorf("%s: write manifests in YAML", path)
			return nil
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte("\t")) {
			t.Errorf("%s: contains a tab", path)
		}
		for i, doc := range splitDocuments(data) {
			kind, obj, err := decodeDocument(doc)
			if err != nil {
				t.Errorf("%s#%d: %v", path, i, err)
				continue
			}
			out = append(out, manifest{File: path, Index: i, Kind: kind, Obj: obj})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", manifestRoot, err)
	}
	if len(out) == 0 {
		t.Fatalf("no manifests found under %s", manifestRoot)
	}
	return out
}

// TestManifestsDecodeStrictly decodes every document of every manifest into
// the Kubernetes API types; loadManifests reports each failure.
func TestManifestsDecodeStrictly(t *testing.T) {
	ms := loadManifests(t)
	counts := map[string]int{}
	for _, m := range ms {
		counts[m.Kind]++
	}
	t.Logf("decoded %d documents: %v", len(ms), counts)
	for _, want := range []string{"apps/v1/DaemonSet", "apps/v1/StatefulSet", "v1/ConfigMap", "v1/Namespace", "v1/ServiceAccount", "v1/Service"} {
		if counts[want] == 0 {
			t.Errorf("no %s among the manifests", want)
		}
	}
}

// TestStrictDecodingCatchesMistakes proves the decoder used above rejects the
// mistakes it is there to catch.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	tests := []struct {
		name, doc, wantErr string
	}{
		{"misspelt field", "apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      hostPid: true\n", `unknown field "spec.template.spec.hostPid"`},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", "already set"},
		{"wrong type", "apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      hostPID: \"yes\"\n", "cannot unmarshal"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\n", "unknown kind v1/Pod"},
		{"no kind", "metadata:\n  name: x\n", "no apiVersion or kind"},
		{"bad quantity", "apiVersion: v1\nkind: ResourceQuota\nspec:\n  hard:\n    pods: lots\n", "quantities must match"},
		{"kustomization typo", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresource:\n  - a.yaml\n", `unknown field "resource"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeDocument([]byte(tt.doc))
			if err == nil {
				t.Fatalf("decoded without error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestKustomizations checks that every resource a kustomization lists exists
// and that every manifest file is listed by exactly one kustomization, so
// `kubectl apply -k` never silently skips a file.
func TestKustomizations(t *testing.T) {
	listed := map[string]int{}
	var files []string
	for _, m := range loadManifests(t) {
		if filepath.Base(m.File) != "kustomization.yaml" {
			if m.Index == 0 {
				files = append(files, m.File)
			}
			continue
		}
		k := m.Obj.(*kustomization)
		if len(k.Resources) == 0 {
			t.Errorf("%s: no resources", m.File)
		}
		dir := filepath.Dir(m.File)
		for _, r := range k.Resources {
			p := filepath.Join(dir, r)
			fi, err := os.Stat(p)
			switch {
			case err != nil:
				t.Errorf("%s: resource %q: %v", m.File, r, err)
			case fi.IsDir():
				if _, err := os.Stat(filepath.Join(p, "kustomization.yaml")); err != nil {
					t.Errorf("%s: resource directory %q has no kustomization.yaml", m.File, r)
				}
			default:
				if filepath.Dir(p) != dir {
					t.Errorf("%s: resource %q is a file outside the kustomization's directory; kustomize refuses that, list its directory instead", m.File, r)
				}
				listed[p]++
			}
		}
	}
	for _, f := range files {
		if listed[f] != 1 {
			t.Errorf("%s is listed by %d kustomizations, want exactly 1", f, listed[f])
		}
	}
}

// TestKubectlKustomize renders every kustomization with kubectl when it is
// installed (it is not a project dependency) and decodes the result strictly.
func TestKubectlKustomize(t *testing.T) {
	kubectl, err := lookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed; the kustomizations were checked structurally by TestKustomizations")
	}
	for _, dir := range []string{"", "least-privilege", "nats"} {
		t.Run("kustomize "+dir, func(t *testing.T) {
			out, err := runCmd(t, kubectl, "kustomize", filepath.Join(manifestRoot, dir))
			if err != nil {
				t.Fatalf("kubectl kustomize: %v\n%s", err, out)
			}
			n := 0
			for _, doc := range splitDocuments(out) {
				if _, _, err := decodeDocument(doc); err != nil {
					t.Errorf("rendered document %d: %v", n, err)
				}
				n++
			}
			if n == 0 {
				t.Fatalf("kubectl kustomize rendered nothing")
			}
		})
	}
}

// TestImagesPinned requires every container image to carry a version tag (or
// a digest), never :latest or no tag at all.
func TestImagesPinned(t *testing.T) {
	n := 0
	for _, m := range loadManifests(t) {
		spec := podSpec(m)
		if spec == nil {
			continue
		}
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			n++
			if err := checkImagePinned(c.Image); err != nil {
				t.Errorf("%s container %s: %v", m, c.Name, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no containers found")
	}
}

// checkImagePinned accepts name:tag where the tag contains a version number,
// and name@sha256:digest.
func checkImagePinned(image string) error {
	if image == "" {
		return fmt.Errorf("no image")
	}
	if name, digest, ok := strings.Cut(image, "@"); ok {
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) {
			return fmt.Errorf("image %q: malformed digest", image)
		}
		image = name
		if !strings.Contains(image[strings.LastIndex(image, "/")+1:], ":") {
			return nil // digest only
		}
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	if !ok {
		return fmt.Errorf("image %q has no tag (implicitly :latest)", image)
	}
	if tag == "latest" || !regexp.MustCompile(`[0-9]`).MatchString(tag) {
		return fmt.Errorf("image %q: tag %q is not a version", image, tag)
	}
	return nil
}

func TestCheckImagePinned(t *testing.T) {
	for img, ok := range map[string]bool{
		"ghcr.io/tripline/sensor:0.1.0":                 true,
		"nats:2.15.2-alpine":                            true,
		"localhost:5000/sensor:1.2":                     true,
		"nats@sha256:" + strings.Repeat("a", 64):        true,
		"nats:2.15.2@sha256:" + strings.Repeat("b", 64): true,
		"nats":                  false,
		"nats:latest":           false,
		"nats:alpine":           false,
		"localhost:5000/sensor": false,
		"nats@sha256:1234":      false,
		"":                      false,
	} {
		if err := checkImagePinned(img); (err == nil) != ok {
			t.Errorf("checkImagePinned(%q) = %v, want ok=%v", img, err, ok)
		}
	}
}

// TestReferencesResolve checks that namespaces, ConfigMaps, service accounts
// and the keys pods mount exist among the manifests (Secrets are created by
// the operator, see docs/deployment.md, and are only listed here).
func TestReferencesResolve(t *testing.T) {
	ms := loadManifests(t)
	namespaces := map[string]bool{}
	configMaps := map[string]*corev1.ConfigMap{}
	accounts := map[string]bool{}
	for _, m := range ms {
		switch o := m.Obj.(type) {
		case *corev1.Namespace:
			namespaces[o.Name] = true
		case *corev1.ConfigMap:
			configMaps[o.Namespace+"/"+o.Name] = o
		case *corev1.ServiceAccount:
			accounts[o.Namespace+"/"+o.Name] = true
		}
	}
	externalSecrets := map[string]bool{"tripline/tripline-nats": true, "tripline-nats/nats-auth": true, "tripline-nats/nats-tls": true}
	for _, m := range ms {
		meta := objectMeta(m)
		if meta == nil {
			continue
		}
		if _, isNS := m.Obj.(*corev1.Namespace); !isNS {
			if meta.Namespace == "" {
				t.Errorf("%s: no namespace", m)
			} else if !namespaces[meta.Namespace] {
				t.Errorf("%s: namespace %q is not defined by any manifest", m, meta.Namespace)
			}
		}
		spec := podSpec(m)
		if spec == nil {
			continue
		}
		ns := meta.Namespace
		if sa := spec.ServiceAccountName; sa != "" && !accounts[ns+"/"+sa] {
			t.Errorf("%s: service account %q not defined", m, sa)
		}
		for _, v := range spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				if configMaps[ns+"/"+v.ConfigMap.Name] == nil {
					t.Errorf("%s: volume %s: ConfigMap %q not defined", m, v.Name, v.ConfigMap.Name)
				}
			case v.Secret != nil:
				if !externalSecrets[ns+"/"+v.Secret.SecretName] {
					t.Errorf("%s: volume %s: Secret %q is not documented; add it to docs/deployment.md and externalSecrets", m, v.Name, v.Secret.SecretName)
				}
			}
		}
		claims := map[string]bool{}
		if sts, ok := m.Obj.(*appsv1.StatefulSet); ok {
			for _, vct := range sts.Spec.VolumeClaimTemplates {
				claims[vct.Name] = true
			}
		}
		for _, c := range spec.Containers {
			for _, vm := range c.VolumeMounts {
				if findVolume(spec, vm.Name) == nil && !claims[vm.Name] {
					t.Errorf("%s: container %s mounts undefined volume %q", m, c.Name, vm.Name)
				}
				if vm.SubPath == "" {
					continue
				}
				v := findVolume(spec, vm.Name)
				if v != nil && v.ConfigMap != nil {
					if cm := configMaps[ns+"/"+v.ConfigMap.Name]; cm != nil {
						if _, ok := cm.Data[vm.SubPath]; !ok {
							t.Errorf("%s: subPath %q not a key of ConfigMap %s", m, vm.SubPath, cm.Name)
						}
					}
				}
			}
		}
	}
}

// TestSensorConfig checks the daemon configuration file in the ConfigMap:
// valid YAML, flag-shaped keys, and paths that the DaemonSets actually mount.
func TestSensorConfig(t *testing.T) {
	cfg := sensorConfig(t)
	keyRE := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	for k := range cfg {
		if !keyRE.MatchString(k) {
			t.Errorf("config key %q is not a long flag name", k)
		}
	}
	if cfg["output"] != "nats" {
		t.Errorf("output = %v, want nats", cfg["output"])
	}

	// The daemon's own config loader must accept the file, together with the
	// flags the DaemonSets pass.
	for _, m := range loadManifests(t) {
		ds, ok := m.Obj.(*appsv1.DaemonSet)
		if !ok {
			continue
		}
		c := sensorContainer(t, ds)
		conf := config.Default()
		fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
		fs.String("config", "", "")
		conf.RegisterFlags(fs)
		args := expandEnv(c.Args[1:], c.Env)
		if err := fs.Parse(args); err != nil {
			t.Errorf("%s: sensor run rejects the args %v: %v", m, args, err)
			continue
		}
		p := filepath.Join(t.TempDir(), "sensor.yaml")
		raw, _ := yaml.Marshal(cfg)
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := config.ApplyFile(p, fs); err != nil {
			t.Errorf("%s: sensor run rejects sensor.yaml: %v", m, err)
		}
		if err := conf.Validate(); err != nil {
			t.Errorf("%s: resulting configuration invalid: %v", m, err)
		}
		if conf.MetricsAddr != "0.0.0.0:9376" || conf.NATS.URL == "" || conf.NATS.CredsFile == "" {
			t.Errorf("%s: metrics-addr=%q nats-url=%q nats-creds=%q", m, conf.MetricsAddr, conf.NATS.URL, conf.NATS.CredsFile)
		}
	}
	for _, m := range loadManifests(t) {
		ds, ok := m.Obj.(*appsv1.DaemonSet)
		if !ok {
			continue
		}
		c := sensorContainer(t, ds)
		mounted := func(p string) bool {
			for _, vm := range c.VolumeMounts {
				if p == vm.MountPath || strings.HasPrefix(p, vm.MountPath+"/") {
					return true
				}
			}
			return false
		}
		for _, key := range []string{"nats-creds", "nats-ca", "data-dir", "containerd-socket"} {
			p, _ := cfg[key].(string)
			if p == "" {
				t.Errorf("config has no %s", key)
			} else if !mounted(p) {
				t.Errorf("%s: config %s=%s is not under any volume mount", m, key, p)
			}
		}
		rules, _ := cfg["rules"].([]any)
		for _, r := range rules {
			p := r.(string)
			if p != "/etc/tripline/rules" && !mounted(p) { // the image holds /etc/tripline/rules
				t.Errorf("%s: rules path %s is neither in the image nor mounted", m, p)
			}
		}
	}
}

// sensorConfig returns the parsed sensor.yaml of the tripline-config ConfigMap.
func sensorConfig(t *testing.T) map[string]any {
	t.Helper()
	for _, m := range loadManifests(t) {
		cm, ok := m.Obj.(*corev1.ConfigMap)
		if !ok || cm.Name != "tripline-config" {
			continue
		}
		raw, ok := cm.Data["sensor.yaml"]
		if !ok {
			t.Fatalf("%s: no sensor.yaml key", m)
		}
		var cfg map[string]any
		if err := yaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
			t.Fatalf("%s: sensor.yaml: %v", m, err)
		}
		return cfg
	}
	t.Fatal("no tripline-config ConfigMap")
	return nil
}

func objectMeta(m manifest) *metaLike {
	switch o := m.Obj.(type) {
	case *corev1.Namespace:
		return &metaLike{o.Name, o.Namespace}
	case *corev1.ServiceAccount:
		return &metaLike{o.Name, o.Namespace}
	case *corev1.ConfigMap:
		return &metaLike{o.Name, o.Namespace}
	case *corev1.Secret:
		return &metaLike{o.Name, o.Namespace}
	case *corev1.Service:
		return &metaLike{o.Name, o.Namespace}
	case *corev1.ResourceQuota:
		return &metaLike{o.Name, o.Namespace}
	case *appsv1.DaemonSet:
		return &metaLike{o.Name, o.Namespace}
	case *appsv1.StatefulSet:
		return &metaLike{o.Name, o.Namespace}
	case *policyv1.PodDisruptionBudget:
		return &metaLike{o.Name, o.Namespace}
	case *networkingv1.NetworkPolicy:
		return &metaLike{o.Name, o.Namespace}
	}
	return nil
}

type metaLike struct{ Name, Namespace string }

func podSpec(m manifest) *corev1.PodSpec {
	switch o := m.Obj.(type) {
	case *appsv1.DaemonSet:
		return &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &o.Spec.Template.Spec
	}
	return nil
}

func findVolume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expandEnv applies the kubelet's $(VAR) expansion of container args, with
// values from the downward API replaced by a placeholder.
func expandEnv(args []string, env []corev1.EnvVar) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for _, e := range env {
			v := e.Value
			if e.ValueFrom != nil {
				v = "placeholder-" + strings.ToLower(e.Name)
			}
			a = strings.ReplaceAll(a, "$("+e.Name+")", v)
		}
		out[i] = a
	}
	return out
}

// TestRulesConfigMapLoads loads the default rules followed by every file of
// the tripline-rules ConfigMap, in the order the DaemonSet's config gives, with
// the real rules loader: a site rule that breaks the load fails here, not on
// every node.
func TestRulesConfigMapLoads(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, m := range loadManifests(t) {
		cm, ok := m.Obj.(*corev1.ConfigMap)
		if !ok || cm.Name != "tripline-rules" {
			continue
		}
		for _, k := range sortedKeys(cm.Data) {
			p := filepath.Join(dir, k)
			if err := os.WriteFile(p, []byte(cm.Data[k]), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		t.Fatal("no tripline-rules ConfigMap or it is empty")
	}
	_, rep, err := rules.LoadFiles(append([]string{"../rules"}, files...), rules.Options{})
	if err != nil {
		for _, e := range rep.Errors {
			t.Error(e.Error())
		}
		t.Fatalf("the default rules plus the tripline-rules ConfigMap do not load: %v", err)
	}
	for _, w := range rep.Warnings {
		if strings.HasPrefix(w.Error(), dir) {
			t.Logf("warning in the ConfigMap rules: %s", w.Error())
		}
	}
}
