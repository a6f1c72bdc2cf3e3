package enrich

import "strings"

// idPrefixes are what container runtimes and their cgroup drivers put before
// the id in a cgroup path component (systemd driver: "cri-containerd-<id>.scope",
// "docker-<id>.scope"; cgroup v1 systemd-style cgroupsPath: "...:cri-containerd:<id>").
var idPrefixes = [...]string{"cri-containerd-", "docker-", "containerd-", "crio-", "libpod-", "cri-o-"}

// ContainerID extracts a container id from a cgroup path: the last path
// component that, stripped of a runtime prefix and a ".scope" suffix, is a
// 64-character lowercase hex id. It covers containerd/CRI, Docker and plain
// containerd (ctr) under cgroup v1 and v2 with the cgroupfs and systemd
// drivers, e.g. /k8s.io/<id>, /default/<id>, /docker/<id>,
// /kubepods/burstable/pod<uid>/<id>,
// /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope,
// /system.slice/docker-<id>.scope. A host path gives ok=false. id is a
// substring of cgroupPath; ContainerID does not allocate.
func ContainerID(cgroupPath string) (id string, ok bool) {
	// Fast paths for the two common shapes of the last component, without
	// scanning the path: "/<id>" (cgroupfs) and "/<prefix><id>.scope"
	// (systemd).
	p := cgroupPath
	if n := len(p); n >= 65 && p[n-65] == '/' && isHex(p[n-64:]) {
		return p[n-64:], true
	}
	if c, ok := strings.CutSuffix(p, ".scope"); ok && len(c) > 64 {
		id, pre := c[len(c)-64:], c[:len(c)-64]
		for _, x := range idPrefixes {
			if len(pre) > len(x) && pre[len(pre)-len(x)-1] == '/' && strings.HasSuffix(pre, x) {
				if isHex(id) {
					return id, true
				}
				break
			}
		}
	}
	return containerIDScan(p)
}

// containerIDScan is ContainerID without the fast paths: every component,
// last first.
func containerIDScan(p string) (string, bool) {
	for len(p) > 0 {
		i := strings.LastIndexByte(p, '/')
		comp := p[i+1:]
		if i < 0 {
			p = ""
		} else {
			p = p[:i]
		}
		if id, ok := componentID(comp); ok {
			return id, true
		}
	}
	return "", false
}

// componentID finds a hex id in one path component: the whole component,
// or its last 64 bytes (before a ".scope" suffix) after a runtime prefix or
// a ':' ("kubepods-...slice:cri-containerd:<id>").
func componentID(c string) (string, bool) {
	if len(c) < 64 {
		return "", false
	}
	if len(c) == 64 {
		return c, isHex(c) // the common cgroupfs case: the bare id
	}
	c = strings.TrimSuffix(c, ".scope")
	if len(c) < 64 {
		return "", false
	}
	id, pre := c[len(c)-64:], c[:len(c)-64]
	if !knownPrefix(pre) || !isHex(id) {
		return "", false
	}
	return id, true
}

func knownPrefix(pre string) bool {
	if pre == "" || pre[len(pre)-1] == ':' {
		return true
	}
	for _, p := range idPrefixes {
		if pre == p {
			return true
		}
	}
	return false
}

// hexDigit marks the lowercase hex digits.
var hexDigit = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !hexDigit[s[i]] {
			return false
		}
	}
	return true
}

// splitNSPath splits a two-component path "/<ns>/<id>" (plain containerd
// with the cgroupfs driver: runc's cgroupsPath is /<namespace>/<id>).
func splitNSPath(p string) (ns, id string, ok bool) {
	if len(p) < 4 || p[0] != '/' {
		return "", "", false
	}
	rest := p[1:]
	i := strings.IndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	ns, id = rest[:i], rest[i+1:]
	if strings.IndexByte(id, '/') >= 0 {
		return "", "", false
	}
	return ns, id, true
}

// validID reports whether s is a valid containerd identifier
// ([A-Za-z0-9]+ separated by single '.', '_' or '-'; at most 76 bytes).
func validID(s string) bool {
	if len(s) == 0 || len(s) > 76 {
		return false
	}
	prevSep := true
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
			prevSep = false
		case b == '.' || b == '_' || b == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// shortID is container.id: the first 12 characters.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
