package enrich

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tripline/tripline/internal/event"
)

// Bounds on what the enricher keeps from containerd's records. Values past a
// bound are truncated (strings) or dropped (list entries).
const (
	maxSpecBytes = 4 << 20
	maxLabels    = 256
	maxKeyLen    = 256
	maxValueLen  = 4096
	maxStrLen    = 1024
	maxMounts    = 128
	maxCaps      = 64
	maxExtBytes  = 1 << 20
)

// CRI labels and annotations.
const (
	labelContainerName = "io.kubernetes.container.name"
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelCRIKind       = "io.cri-containerd.kind"
	annSandboxID       = "io.kubernetes.cri.sandbox-id"
	extCRIContainer    = "io.cri-containerd.container.metadata"
)

var errInvalid = errors.New("enrich: invalid container record")

// record is what the cache keeps of a containerd container besides the
// snapshot: enough to rebuild pod labels once the sandbox is known.
type record struct {
	ns        string
	sandboxID string
}

// trunc bounds a string from containerd; control characters are kept as
// data (outputs escape them).
func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func boundLabels(in map[string]string, skip func(k string) bool) map[string]string {
	if len(in) == 0 {
		return nil
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		if len(k) == 0 || len(k) > maxKeyLen || (skip != nil && skip(k)) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic choice when truncating
	if len(keys) > maxLabels {
		keys = keys[:maxLabels]
	}
	if len(keys) == 0 {
		return nil
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = trunc(in[k], maxValueLen)
	}
	return out
}

// buildContainer converts a containerd container record into the event
// snapshot. ns is its containerd namespace.
func buildContainer(ns string, c *containersapi.Container) (*event.Container, record, error) {
	if c == nil {
		return nil, record{}, fmt.Errorf("%w: empty container record", errInvalid)
	}
	if !validID(c.ID) {
		return nil, record{}, fmt.Errorf("%w: id %q", errInvalid, trunc(c.ID, 80))
	}
	out := &event.Container{
		ID:     shortID(c.ID),
		FullID: c.ID,
		Labels: boundLabels(c.Labels, nil),
	}
	rec := record{ns: ns}
	out.Image = trunc(c.Image, maxStrLen)
	out.ImageRepository, out.ImageTag, out.ImageDigest = splitImage(out.Image)
	out.Name = c.ID
	if n := out.Labels[labelContainerName]; n != "" {
		out.Name = n
	}
	out.PodName = out.Labels[labelPodName]
	out.PodNamespace = out.Labels[labelPodNamespace]
	out.PodUID = out.Labels[labelPodUID]
	switch {
	case out.Labels[labelCRIKind] != "" || ns == "k8s.io":
		out.Type = "cri"
	case ns == "moby":
		out.Type = "docker"
	default:
		out.Type = "containerd"
	}

	criPrivileged := false
	if ext, ok := c.Extensions[extCRIContainer]; ok && ext != nil {
		if v := ext.GetValue(); len(v) > 0 && len(v) <= maxExtBytes {
			criPrivileged = criMetadataPrivileged(v)
		}
	}

	if c.Spec != nil {
		v := c.Spec.GetValue()
		if len(v) > maxSpecBytes {
			return nil, rec, fmt.Errorf("%w: spec of %d bytes", errInvalid, len(v))
		}
		var s specs.Spec
		if len(v) > 0 {
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, rec, fmt.Errorf("%w: spec: %w", errInvalid, err)
			}
		}
		applySpec(out, &s, criPrivileged)
		rec.sandboxID = trunc(s.Annotations[annSandboxID], 80)
	}
	return out, rec, nil
}

// applySpec fills privileged, capabilities, mounts and user from the OCI spec.
func applySpec(out *event.Container, s *specs.Spec, criPrivileged bool) {
	if s.Process != nil {
		out.User = strconv.FormatUint(uint64(s.Process.User.UID), 10)
		if s.Process.Capabilities != nil {
			for _, c := range s.Process.Capabilities.Effective {
				if len(out.Capabilities) >= maxCaps {
					break
				}
				if validCap(c) {
					out.Capabilities = append(out.Capabilities, c)
				}
			}
		}
	}
	for _, m := range s.Mounts {
		if len(out.Mounts) >= maxMounts {
			break
		}
		if !isBind(m) {
			continue
		}
		mm := event.Mount{
			Source: trunc(m.Source, maxStrLen),
			Dest:   trunc(m.Destination, maxStrLen),
			RW:     true,
		}
		var opts []string
		for _, o := range m.Options {
			if len(opts) >= 32 {
				break
			}
			o = trunc(o, 64)
			opts = append(opts, o)
			switch o {
			case "ro":
				mm.RW = false
			case "rprivate", "private", "rshared", "shared", "rslave", "slave":
				mm.Propagation = o
			}
		}
		mm.Mode = strings.Join(opts, ",")
		out.Mounts = append(out.Mounts, mm)
	}
	out.Privileged = criPrivileged || (allCaps(out.Capabilities) && (allDevices(s) || unmasked(s)))
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func validCap(c string) bool {
	if len(c) < 5 || len(c) > 40 || !strings.HasPrefix(c, "CAP_") {
		return false
	}
	for i := 4; i < len(c); i++ {
		b := c[i]
		if (b < 'A' || b > 'Z') && (b < '0' || b > '9') && b != '_' {
			return false
		}
	}
	return true
}

// allCaps reports whether have is (nearly) the full set. A runtime grants a
// privileged container the capabilities it holds itself, which on a
// restricted host may lack one or two (this project's CI VM has no
// CAP_SYS_RESOURCE): allow two missing, never CAP_SYS_ADMIN.
func allCaps(have []string) bool {
	if len(have) < event.CapBaseCount-2 {
		return false
	}
	set := make(map[string]struct{}, len(have))
	for _, c := range have {
		set[c] = struct{}{}
	}
	if _, ok := set["CAP_SYS_ADMIN"]; !ok {
		return false
	}
	missing := 0
	for i := range event.CapBaseCount {
		c := event.CapName(i)
		if _, ok := set[c]; !ok {
			missing++
		}
	}
	return missing <= 2
}

// allDevices: the device cgroup allows every device (privileged mode).
func allDevices(s *specs.Spec) bool {
	if s.Linux == nil || s.Linux.Resources == nil {
		return false
	}
	for _, d := range s.Linux.Resources.Devices {
		if d.Allow && (d.Type == "" || d.Type == "a") && d.Major == nil && d.Minor == nil && strings.Contains(d.Access, "rwm") {
			return true
		}
	}
	return false
}

// unmasked: no masked or read-only proc paths (privileged mode removes them).
func unmasked(s *specs.Spec) bool {
	return s.Linux != nil && len(s.Linux.MaskedPaths) == 0 && len(s.Linux.ReadonlyPaths) == 0
}

// criMetadataPrivileged reads the privileged flag from the CRI plugin's
// container metadata extension (JSON).
func criMetadataPrivileged(b []byte) bool {
	var m struct {
		Metadata struct {
			Config struct {
				Linux *struct {
					SecurityContext *struct {
						Privileged bool `json:"privileged"`
					} `json:"security_context"`
				} `json:"linux"`
			} `json:"Config"`
		} `json:"Metadata"`
	}
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	l := m.Metadata.Config.Linux
	return l != nil && l.SecurityContext != nil && l.SecurityContext.Privileged
}

// splitImage splits an image reference into repository, tag and digest:
// "docker.io/library/nginx:1.25@sha256:ab..." → "docker.io/library/nginx",
// "1.25", "sha256:ab...".
func splitImage(ref string) (repo, tag, digest string) {
	repo = ref
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo, digest = repo[:i], repo[i+1:]
	}
	if i := strings.LastIndexByte(repo, ':'); i >= 0 && !strings.Contains(repo[i:], "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// withPodLabels returns c with PodLabels from the sandbox's labels (CRI puts
// the pod's labels on the sandbox container), dropping the runtime's own.
func withPodLabels(c, sandbox *event.Container) *event.Container {
	if sandbox == nil || len(sandbox.Labels) == 0 {
		return c
	}
	pl := boundLabels(sandbox.Labels, func(k string) bool {
		return strings.HasPrefix(k, "io.kubernetes.") || strings.HasPrefix(k, "io.cri-containerd.")
	})
	if len(pl) == 0 {
		return c
	}
	n := *c
	n.PodLabels = pl
	return &n
}
