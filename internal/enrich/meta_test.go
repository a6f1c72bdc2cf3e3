package enrich

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tripline/tripline/internal/event"
)

func specAny(t *testing.T, s *specs.Spec) *anypb.Any {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value: b}
}

func TestBuildContainerCRI(t *testing.T) {
	rec := containersapi.Container{
		ID:    hexA,
		Image: "registry.example/team/app:1.2@sha256:" + hexB,
		Labels: map[string]string{
			labelContainerName: "web", labelPodName: "web-7d9", labelPodNamespace: "shop",
			labelPodUID: uid, labelCRIKind: "container", "evil": "a\x1b[31mb\nc",
		},
		Spec: specAny(t, &specs.Spec{
			Process: &specs.Process{User: specs.User{UID: 1000},
				Capabilities: &specs.LinuxCapabilities{Effective: []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN", "bogus", "CAP_x"}}},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/host/etc", Type: "bind", Source: "/etc", Options: []string{"rbind", "ro", "rprivate"}},
				{Destination: "/data", Source: "/srv/data", Options: []string{"rbind", "rw"}},
			},
			Linux:       &specs.Linux{MaskedPaths: []string{"/proc/kcore"}},
			Annotations: map[string]string{annSandboxID: hexB},
		}),
	}
	c, r, err := buildContainer("k8s.io", &rec)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != hexA[:12] || c.FullID != hexA || c.Name != "web" || c.Type != "cri" {
		t.Errorf("identity: %+v", c)
	}
	if c.PodName != "web-7d9" || c.PodNamespace != "shop" || c.PodUID != uid || r.sandboxID != hexB || r.ns != "k8s.io" {
		t.Errorf("pod: %+v %+v", c, r)
	}
	if c.ImageRepository != "registry.example/team/app" || c.ImageTag != "1.2" || c.ImageDigest != "sha256:"+hexB {
		t.Errorf("image: %q %q %q", c.ImageRepository, c.ImageTag, c.ImageDigest)
	}
	if c.User != "1000" || c.Privileged || strings.Join(c.Capabilities, ",") != "CAP_NET_BIND_SERVICE,CAP_CHOWN" {
		t.Errorf("security: user %q priv %v caps %v", c.User, c.Privileged, c.Capabilities)
	}
	if len(c.Mounts) != 2 || c.Mounts[0].Source != "/etc" || c.Mounts[0].Dest != "/host/etc" || c.Mounts[0].RW ||
		c.Mounts[0].Propagation != "rprivate" || c.Mounts[0].Mode != "rbind,ro,rprivate" || !c.Mounts[1].RW {
		t.Errorf("mounts: %+v", c.Mounts)
	}
	if c.Labels["evil"] != "a\x1b[31mb\nc" {
		t.Errorf("control characters not kept as data: %q", c.Labels["evil"])
	}
	// Pod labels come from the sandbox.
	sb := withPodLabels(c, &event.Container{Labels: map[string]string{"app": "web", labelCRIKind: "sandbox", "io.kubernetes.pod.name": "x"}})
	if len(sb.PodLabels) != 1 || sb.PodLabels["app"] != "web" || c.PodLabels != nil {
		t.Errorf("pod labels %v (original %v)", sb.PodLabels, c.PodLabels)
	}
}

func TestBuildContainerPrivileged(t *testing.T) {
	var all []string
	for i := range event.CapBaseCount + 3 { // + CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE
		all = append(all, event.CapName(i))
	}
	for _, tc := range []struct {
		name string
		spec specs.Spec
		ext  string
		want bool
	}{
		{"all caps + all devices", specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Effective: all}},
			Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}, Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}}}, "", true},
		{"all caps + unmasked", specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Effective: all}},
			Linux: &specs.Linux{}}, "", true},
		{"all caps, masked, device list", specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Effective: all}},
			Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}, Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}}}, "", false},
		{"sys_admin only", specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Effective: []string{"CAP_SYS_ADMIN"}}},
			Linux: &specs.Linux{}}, "", false},
		{"cri metadata", specs.Spec{Linux: &specs.Linux{}},
			`{"Version":"v1","Metadata":{"ID":"x","Config":{"linux":{"security_context":{"privileged":true}}}}}`, true},
		{"cri metadata unprivileged", specs.Spec{Linux: &specs.Linux{}},
			`{"Version":"v1","Metadata":{"ID":"x","Config":{"linux":{"security_context":{}}}}}`, false},
	} {
		rec := containersapi.Container{ID: hexA, Spec: specAny(t, &tc.spec)}
		if tc.ext != "" {
			rec.Extensions = map[string]*anypb.Any{extCRIContainer: &anypb.Any{TypeUrl: "x", Value: []byte(tc.ext)}}
		}
		c, _, err := buildContainer("default", &rec)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Privileged != tc.want {
			t.Errorf("%s: privileged = %v", tc.name, c.Privileged)
		}
	}
}

func TestBuildContainerInvalid(t *testing.T) {
	for _, rec := range []*containersapi.Container{
		nil,
		{ID: ""},
		{ID: "a/b"},
		{ID: "x\x00y"},
		{ID: strings.Repeat("a", 100)},
		{ID: "ok", Spec: &anypb.Any{Value: []byte("{not json")}},
		{ID: "ok", Spec: &anypb.Any{Value: make([]byte, maxSpecBytes+1)}},
	} {
		if _, _, err := buildContainer("default", rec); err == nil {
			t.Errorf("accepted %q", trunc(rec.GetID(), 20))
		}
	}
	// Oversized label sets are bounded, not rejected.
	big := map[string]string{strings.Repeat("k", maxKeyLen+1): "dropped"}
	for i := 0; i < 2*maxLabels; i++ {
		big[fmt.Sprintf("l%04d", i)] = strings.Repeat("v", maxValueLen+10)
	}
	c, _, err := buildContainer("default", &containersapi.Container{ID: "t1", Labels: big, Image: strings.Repeat("i", 5000)})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Labels) != maxLabels || len(c.Labels["l0000"]) != maxValueLen || len(c.Image) != maxStrLen || c.Name != "t1" || c.Type != "containerd" {
		t.Errorf("bounds: %d labels, value %d, image %d", len(c.Labels), len(c.Labels["l0000"]), len(c.Image))
	}
}

func TestSplitImage(t *testing.T) {
	for _, tc := range []struct{ ref, repo, tag, dig string }{
		{"nginx", "nginx", "", ""},
		{"nginx:1.25", "nginx", "1.25", ""},
		{"docker.io/library/nginx:1.25", "docker.io/library/nginx", "1.25", ""},
		{"localhost:5000/app", "localhost:5000/app", "", ""},
		{"localhost:5000/app:v1", "localhost:5000/app", "v1", ""},
		{"app@sha256:" + hexA, "app", "", "sha256:" + hexA},
		{"r.io/a/b:t@sha256:" + hexA, "r.io/a/b", "t", "sha256:" + hexA},
		{"", "", "", ""},
	} {
		r, tg, d := splitImage(tc.ref)
		if r != tc.repo || tg != tc.tag || d != tc.dig {
			t.Errorf("splitImage(%q) = %q %q %q", tc.ref, r, tg, d)
		}
	}
}

func TestEventTime(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		stamp time.Time
		valid bool
		want  time.Time
	}{
		{now.Add(-time.Second), true, now.Add(-time.Second)},
		{time.Unix(0, 0), true, now},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true, now},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), true, now},
		{now.Add(-time.Second), false, now},
	} {
		if got := eventTime(tc.stamp, tc.valid, now); !got.Equal(tc.want) {
			t.Errorf("eventTime(%v, %v) = %v, want %v", tc.stamp, tc.valid, got, tc.want)
		}
	}
}
