package enrich

import (
	"strings"
	"testing"
)

const (
	hexA = "3b9f1c2a4d5e6f708192a3b4c5d6e7f80112233445566778899aabbccddeeff0"
	hexB = "a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff"
	uid  = "8f7e6d5c-4b3a-2918-0706-f5e4d3c2b1a0"
)

func TestContainerID(t *testing.T) {
	uidU := strings.ReplaceAll(uid, "-", "_")
	for _, tc := range []struct {
		path, want string
	}{
		// plain containerd (ctr), cgroupfs driver, v1 and v2
		{"/default/" + hexA, hexA},
		{"/k8s.io/" + hexA, hexA},
		{"/moby/" + hexA, hexA},
		// Docker, cgroupfs driver
		{"/docker/" + hexA, hexA},
		// Docker, systemd driver
		{"/system.slice/docker-" + hexA + ".scope", hexA},
		// Kubernetes, cgroupfs driver (v1 and v2)
		{"/kubepods/burstable/pod" + uid + "/" + hexA, hexA},
		{"/kubepods/besteffort/pod" + uid + "/" + hexA, hexA},
		{"/kubepods/pod" + uid + "/" + hexA, hexA},
		// Kubernetes, systemd driver
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + hexA + ".scope", hexA},
		{"/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + hexA + ".scope", hexA},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + hexA + ".scope", hexA},
		// v1 with containerd's systemd-style cgroupsPath left unconverted
		{"/system.slice/containerd.service/kubepods-burstable-pod" + uidU + ".slice:cri-containerd:" + hexA, hexA},
		// nested: the innermost container id wins
		{"/docker/" + hexB + "/docker/" + hexA, hexA},
		// a sub-cgroup inside a container (systemd in a container, v2)
		{"/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + hexA + ".scope/init.scope", hexA},
		// podman
		{"/machine.slice/libpod-" + hexA + ".scope", hexA},
		// host paths
		{"/process_api/fe824243f3e194cf9082bdea5f959e3b", ""},
		{"/", ""},
		{"", ""},
		{"/user.slice/user-1000.slice/session-2.scope", ""},
		{"/system.slice/containerd.service", ""},
		{"/system.slice/docker.service", ""},
		{"/kubepods.slice/kubepods-burstable.slice", ""},
		{"/default/t1", ""},                      // non-hex: only the enricher knows
		{"/docker/" + strings.ToUpper(hexA), ""}, // upper case is not an id
		{"/docker/" + hexA[:63], ""},             // too short
		{"/docker/" + hexA + "0", ""},            // too long
		{"/docker/" + hexA[:63] + "g", ""},       // not hex
		{"/system.slice/docker-" + hexA[:60] + ".scope", ""},
		{"/x/docker-" + hexA + ".slice", ""},
		{"////", ""},
	} {
		got, ok := ContainerID(tc.path)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ContainerID(%q) = %q, %v; want %q", tc.path, got, ok, tc.want)
		}
	}
}

func TestSplitNSPath(t *testing.T) {
	for _, tc := range []struct {
		path, ns, id string
		ok           bool
	}{
		{"/default/t1", "default", "t1", true},
		{"/k8s.io/abc", "k8s.io", "abc", true},
		{"/default/", "", "", false},
		{"/a/b/c", "", "", false},
		{"default/t1", "", "", false},
		{"/", "", "", false},
	} {
		ns, id, ok := splitNSPath(tc.path)
		if ns != tc.ns || id != tc.id || ok != tc.ok {
			t.Errorf("splitNSPath(%q) = %q %q %v", tc.path, ns, id, ok)
		}
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		"t1": true, hexA: true, "a.b-c_d": true, "": false, "-a": false, "a-": false, "a--b": false,
		"a/b": false, "a b": false, "a\x00": false, strings.Repeat("a", 77): false, "k8s.io": true,
	} {
		if validID(s) != want {
			t.Errorf("validID(%q) != %v", s, want)
		}
	}
}

func TestContainerIDNoAlloc(t *testing.T) {
	p := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice/cri-containerd-" + hexA + ".scope"
	if n := testing.AllocsPerRun(100, func() { ContainerID(p) }); n != 0 {
		t.Errorf("ContainerID allocates %.1f", n)
	}
}

func FuzzContainerID(f *testing.F) {
	for _, s := range []string{
		"/default/" + hexA, "/system.slice/docker-" + hexA + ".scope", "/process_api/fe82", "/",
		"/kubepods/burstable/pod" + uid + "/" + hexA, "a:b:" + hexA, "/default/t1",
		"/x/docker-" + hexA + ".scope/" + hexB, "/docker-" + hexA + ".scope", "docker-" + hexA + ".scope", hexA,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id, ok := ContainerID(path)
		if ok {
			if len(id) != 64 || !isHex(id) || !strings.Contains(path, id) {
				t.Fatalf("ContainerID(%q) = %q", path, id)
			}
		} else if id != "" {
			t.Fatalf("ContainerID(%q) = %q without ok", path, id)
		}
		if sid, sok := containerIDScan(path); sid != id || sok != ok {
			t.Fatalf("fast path %q %v, scan %q %v for %q", id, ok, sid, sok, path)
		}
		splitNSPath(path)
		validID(path)
		splitImage(path)
	})
}
