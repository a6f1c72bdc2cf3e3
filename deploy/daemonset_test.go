package deploy_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	privilegedFile     = "kubernetes/daemonset.yaml"
	leastPrivilegeFile = "kubernetes/least-privilege/daemonset.yaml"
	metricsPort        = 9376
)

// leastPrivilegeCaps is the capability set of the least-privilege DaemonSet.
// docs/deployment.md explains each one and deploy/leastpriv_test.go runs the
// real sensor with exactly these.
var leastPrivilegeCaps = []string{"BPF", "PERFMON", "SYS_PTRACE"}

// hostMounts are the host paths every sensor DaemonSet needs, with the mount
// point in the container and whether it must be read-only.
var hostMounts = []struct {
	host, mount string
	readOnly    bool
}{
	{"/sys/kernel/btf", "/sys/kernel/btf", true},
	{"/sys/kernel/tracing", "/sys/kernel/tracing", true},
	{"/sys/fs/cgroup", "/sys/fs/cgroup", true},
	{"/proc", "/host/proc", true},
	{"/run/containerd", "/run/containerd", true},
	{"/var/lib/tripline", "/var/lib/tripline", false},
}

// privilegedOnlyMounts are the host mounts only the privileged variant keeps.
var privilegedOnlyMounts = map[string]string{
	"/sys/kernel/debug": "/sys/kernel/debug",
	"/sys/fs/bpf":       "/sys/fs/bpf",
}

func daemonSet(t *testing.T, file string) *appsv1.DaemonSet {
	t.Helper()
	for _, m := range loadManifests(t) {
		if ds, ok := m.Obj.(*appsv1.DaemonSet); ok && m.File == file {
			return ds
		}
	}
	t.Fatalf("no DaemonSet in %s", file)
	return nil
}

func sensorContainer(t *testing.T, ds *appsv1.DaemonSet) *corev1.Container {
	t.Helper()
	cs := ds.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "sensor" {
		t.Fatalf("DaemonSet %s: want exactly one container named sensor, have %d", ds.Name, len(cs))
	}
	return &cs[0]
}

// TestDaemonSetCommon checks what both sensor DaemonSets must have.
func TestDaemonSetCommon(t *testing.T) {
	for _, file := range []string{privilegedFile, leastPrivilegeFile} {
		t.Run(file, func(t *testing.T) {
			ds := daemonSet(t, file)
			spec := &ds.Spec.Template.Spec
			c := sensorContainer(t, ds)

			if !spec.HostPID {
				t.Error("hostPID is not true")
			}
			if spec.HostNetwork {
				t.Error("hostNetwork is true; the sensor needs no host network")
			}
			if spec.PriorityClassName != "system-node-critical" {
				t.Errorf("priorityClassName = %q", spec.PriorityClassName)
			}
			if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
				return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == ""
			}) {
				t.Errorf("no catch-all toleration {operator: Exists}: %+v", spec.Tolerations)
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken is not false")
			}
			if !reflect.DeepEqual(ds.Spec.Selector.MatchLabels, filterLabels(ds.Spec.Template.Labels, ds.Spec.Selector.MatchLabels)) {
				t.Errorf("selector %v does not match template labels %v", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
			}

			us := ds.Spec.UpdateStrategy
			if us.Type != appsv1.RollingUpdateDaemonSetStrategyType || us.RollingUpdate == nil || us.RollingUpdate.MaxUnavailable == nil {
				t.Errorf("updateStrategy must be RollingUpdate with maxUnavailable: %+v", us)
			} else if mu := us.RollingUpdate.MaxUnavailable; mu.Type == intstr.Int && mu.IntVal < 1 {
				t.Errorf("maxUnavailable = %v", mu)
			}

			// Probes on /healthz of the metrics listener, which must listen
			// on all pod addresses for the kubelet to reach it.
			if !slices.Contains(c.Args, "--metrics-addr=0.0.0.0:9376") {
				t.Errorf("args %v lack --metrics-addr=0.0.0.0:9376", c.Args)
			}
			if len(c.Args) == 0 || c.Args[0] != "run" {
				t.Errorf("args %v do not start with the run subcommand", c.Args)
			}
			for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s probe missing or not httpGet", name)
					continue
				}
				if p.HTTPGet.Path != "/healthz" {
					t.Errorf("%s probe path = %q, want /healthz", name, p.HTTPGet.Path)
				}
				if port := resolvePort(c, p.HTTPGet.Port); port != metricsPort {
					t.Errorf("%s probe port %v resolves to %d, want %d", name, p.HTTPGet.Port.String(), port, metricsPort)
				}
			}

			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
				if req.IsZero() || lim.IsZero() {
					t.Errorf("%s request/limit missing", r)
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s request %s above limit %s", r, req.String(), lim.String())
				}
			}

			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("readOnlyRootFilesystem is not true")
			}

			for _, hm := range hostMounts {
				vm := mountOfHostPath(spec, c, hm.host)
				switch {
				case vm == nil:
					t.Errorf("host path %s is not mounted", hm.host)
				case vm.MountPath != hm.mount:
					t.Errorf("host path %s mounted at %s, want %s", hm.host, vm.MountPath, hm.mount)
				case vm.ReadOnly != hm.readOnly:
					t.Errorf("host path %s: readOnly = %v, want %v", hm.host, vm.ReadOnly, hm.readOnly)
				}
			}
			// Every hostPath mount except the spool is read-only.
			for _, vm := range c.VolumeMounts {
				v := findVolume(spec, vm.Name)
				if v != nil && v.HostPath != nil && !vm.ReadOnly && v.HostPath.Path != "/var/lib/tripline" {
					t.Errorf("host path %s is mounted read-write", v.HostPath.Path)
				}
			}
			// NATS credentials come from a Secret, readable by the owner only.
			creds := mountOfVolume(spec, c, func(v *corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == "tripline-nats" })
			if creds == nil || !creds.ReadOnly {
				t.Error("Secret tripline-nats is not mounted read-only")
			}
			if v := findVolume(spec, creds.Name); v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
				t.Error("Secret tripline-nats: defaultMode must not grant group/other access")
			}
			if !strings.HasPrefix(sensorConfigPath(c), "/etc/tripline/config/") || mountOfVolume(spec, c, func(v *corev1.Volume) bool {
				return v.ConfigMap != nil && v.ConfigMap.Name == "tripline-config"
			}) == nil {
				t.Error("the sensor does not read --config from the tripline-config ConfigMap")
			}
		})
	}
}

// TestDaemonSetPrivileged checks the privileged variant.
func TestDaemonSetPrivileged(t *testing.T) {
	ds := daemonSet(t, privilegedFile)
	c := sensorContainer(t, ds)
	if c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("privileged is not true")
	}
	for host, mount := range privilegedOnlyMounts {
		vm := mountOfHostPath(&ds.Spec.Template.Spec, c, host)
		if vm == nil || vm.MountPath != mount || !vm.ReadOnly {
			t.Errorf("host path %s not mounted read-only at %s", host, mount)
		}
	}
}

// TestDaemonSetLeastPrivilege checks that the least-privilege variant drops
// privileged mode for exactly the documented capabilities.
func TestDaemonSetLeastPrivilege(t *testing.T) {
	data, err := os.ReadFile(leastPrivilegeFile)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^\s*privileged:\s*true`).Match(data) {
		t.Errorf("%s contains privileged: true", leastPrivilegeFile)
	}
	ds := daemonSet(t, leastPrivilegeFile)
	spec := &ds.Spec.Template.Spec
	c := sensorContainer(t, ds)
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no securityContext")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged is true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil {
		t.Fatal("no capabilities")
	}
	if got := capNames(sc.Capabilities.Drop); !slices.Equal(got, []string{"ALL"}) {
		t.Errorf("capabilities.drop = %v, want [ALL]", got)
	}
	if got, want := sortedCopy(capNames(sc.Capabilities.Add)), sortedCopy(leastPrivilegeCaps); !slices.Equal(got, want) {
		t.Errorf("capabilities.add = %v, want exactly %v", got, want)
	}
	if slices.Contains(capNames(sc.Capabilities.Add), "SYS_ADMIN") {
		t.Error("SYS_ADMIN added")
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if spec.SecurityContext != nil && spec.SecurityContext.SeccompProfile != nil && spec.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
		t.Error("pod-level seccomp Unconfined")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			if _, ok := privilegedOnlyMounts[v.HostPath.Path]; ok {
				t.Errorf("host path %s mounted; the least-privilege sensor does not need it", v.HostPath.Path)
			}
		}
	}

	// Every capability is explained in docs/deployment.md, and nothing else
	// is claimed there.
	doc, err := os.ReadFile("../docs/deployment.md")
	if err != nil {
		t.Fatalf("reading the capability table: %v", err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\|\\s*`?CAP_([A-Z_]+)`?\\s*\\|\\s*(yes|no)").FindAllSubmatch(doc, -1) {
		if string(m[2]) == "yes" {
			documented[string(m[1])] = true
		}
	}
	if got, want := sortedKeys(documented), sortedCopy(leastPrivilegeCaps); !slices.Equal(got, want) {
		t.Errorf("docs/deployment.md capability table grants %v, manifest grants %v", got, want)
	}
}

// TestDaemonSetsInSync makes the two variants identical apart from the
// security context and the privileged-only host mounts, so a change to one
// cannot be forgotten in the other.
func TestDaemonSetsInSync(t *testing.T) {
	strip := func(ds *appsv1.DaemonSet) *appsv1.DaemonSet {
		ds = ds.DeepCopy()
		spec := &ds.Spec.Template.Spec
		drop := map[string]bool{}
		var vols []corev1.Volume
		for _, v := range spec.Volumes {
			if v.HostPath != nil && privilegedOnlyMounts[v.HostPath.Path] != "" {
				drop[v.Name] = true
				continue
			}
			vols = append(vols, v)
		}
		spec.Volumes = vols
		for i := range spec.Containers {
			c := &spec.Containers[i]
			c.SecurityContext = nil
			var mounts []corev1.VolumeMount
			for _, vm := range c.VolumeMounts {
				if !drop[vm.Name] {
					mounts = append(mounts, vm)
				}
			}
			c.VolumeMounts = mounts
		}
		return ds
	}
	priv, least := strip(daemonSet(t, privilegedFile)), strip(daemonSet(t, leastPrivilegeFile))
	if !reflect.DeepEqual(priv, least) {
		t.Errorf("the DaemonSets differ beyond securityContext and the debugfs/bpffs mounts:\nprivileged: %+v\nleast-privilege: %+v", priv.Spec.Template.Spec, least.Spec.Template.Spec)
	}
}

// TestNATSStatefulSet checks the example NATS cluster's essentials.
func TestNATSStatefulSet(t *testing.T) {
	var sts *appsv1.StatefulSet
	for _, m := range loadManifests(t) {
		if s, ok := m.Obj.(*appsv1.StatefulSet); ok && s.Name == "nats" {
			sts = s
		}
	}
	if sts == nil {
		t.Fatal("no nats StatefulSet")
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Error("want 3 replicas (JetStream R3 quorum)")
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Error("want one volumeClaimTemplate for the JetStream store")
	}
	spec := &sts.Spec.Template.Spec
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("NATS does not run as non-root")
	}
	for _, c := range spec.Containers {
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("container %s lacks probes", c.Name)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(capNames(sc.Capabilities.Drop), []string{"ALL"}) {
			t.Errorf("container %s is not restricted", c.Name)
		}
	}
}

func filterLabels(labels, keys map[string]string) map[string]string {
	out := map[string]string{}
	for k := range keys {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

func mountOfVolume(spec *corev1.PodSpec, c *corev1.Container, match func(*corev1.Volume) bool) *corev1.VolumeMount {
	for i, vm := range c.VolumeMounts {
		if v := findVolume(spec, vm.Name); v != nil && match(v) {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func mountOfHostPath(spec *corev1.PodSpec, c *corev1.Container, host string) *corev1.VolumeMount {
	return mountOfVolume(spec, c, func(v *corev1.Volume) bool { return v.HostPath != nil && v.HostPath.Path == host })
}

func sensorConfigPath(c *corev1.Container) string {
	for _, a := range c.Args {
		if p, ok := strings.CutPrefix(a, "--config="); ok {
			return p
		}
	}
	return ""
}

func capNames(cs []corev1.Capability) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
