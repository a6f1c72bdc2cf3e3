package rules

import (
	"sort"
	"strings"
	"sync"

	"github.com/tripline/tripline/internal/event"
)

// falcoEventNames are the evt.type values Falco knows (syscalls and its own
// events). A name outside this set is "unknown event type"; a known name the
// sensor does not capture makes a rule (partially) skipped.
var falcoEventNames = strings.Fields(`
accept accept4 access acct add_key adjtimex alarm arch_prctl asyncevent bind bpf brk capget capset chdir chmod chown
chroot clock_adjtime clock_getres clock_gettime clock_nanosleep clock_settime clone clone3 close close_range connect
container copy_file_range cpu_hotplug creat delete_module drop dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fallocate fanotify_init fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr
finit_module flistxattr flock fork fremovexattr fsconfig fsetxattr fsmount fsopen fspick fstat fstatfs fsync ftruncate
futex futimesat get_mempolicy get_robust_list getcpu getcwd getdents getdents64 getegid geteuid getgid getgroups
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid getrlimit getrusage
getsid getsockname getsockopt gettid gettimeofday getuid getxattr infra init_module inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ioctl ioperm iopl ioprio_get ioprio_set k8s kcmp kexec_file_load kexec_load keyctl kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lgetxattr link linkat listen listxattr llistxattr lookup_dcookie
lremovexattr lseek lsetxattr lstat madvise mbind membarrier memfd_create memfd_secret mesos migrate_pages mincore mkdir
mkdirat mknod mknodat mlock mlock2 mlockall mmap mount mount_setattr move_mount move_pages mprotect mq_getsetattr
mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat notification open open_by_handle_at open_tree openat openat2 page_fault
pause perf_event_open personality pidfd_getfd pidfd_open pidfd_send_signal pipe pipe2 pivot_root pkey_alloc pkey_free
pkey_mprotect pluginevent poll ppoll prctl pread pread64 preadv preadv2 prlimit prlimit64 procexit procinfo
process_madvise process_mrelease process_vm_readv process_vm_writev pselect6 ptrace pwrite pwrite64 pwritev pwritev2
quotactl quotactl_fd read readahead readlink readlinkat readv reboot recv recvfrom recvmmsg recvmsg
remap_file_pages removexattr rename renameat renameat2 request_key restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo
sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop send sendfile sendfile64 sendmmsg sendmsg sendto set_mempolicy set_robust_list
set_tid_address setdomainname setfsgid setfsuid setgid setgroups sethostname setitimer setns setpgid setpriority
setregid setresgid setresuid setreuid setrlimit setsid setsockopt settimeofday setuid setxattr shmat shmctl shmdt
shmget shutdown sigaltstack signaldeliver signalfd signalfd4 socket socketpair splice stat statfs statx swapoff swapon
switch symlink symlinkat sync sync_file_range syncfs sysdigevent sysinfo syslog tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_settime timerfd timerfd_create timerfd_gettime timerfd_settime times
tkill tracer truncate umask umount umount2 uname unlink unlinkat unshare userfaultfd ustat utime utimensat utimes vfork
vhangup vmsplice wait4 waitid write writev
`)

// knownEventNames is built once; the map is never written afterwards.
var knownEventNames = sync.OnceValue(buildKnownEventNames)

func buildKnownEventNames() map[string]bool {
	m := make(map[string]bool, len(falcoEventNames))
	for _, n := range falcoEventNames {
		m[n] = true
	}
	return m
}

// typeSet is a set of event-type names, or its complement when neg.
type typeSet struct {
	neg   bool
	names map[string]bool
}

func allTypes() typeSet             { return typeSet{neg: true} }
func noTypes() typeSet              { return typeSet{} }
func (s typeSet) has(n string) bool { return s.names[n] != s.neg }

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func union(a, b map[string]bool) map[string]bool {
	m := make(map[string]bool, len(a)+len(b))
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func inter(a, b map[string]bool) map[string]bool {
	m := make(map[string]bool)
	for k := range a {
		if b[k] {
			m[k] = true
		}
	}
	return m
}

func minus(a, b map[string]bool) map[string]bool {
	m := make(map[string]bool)
	for k := range a {
		if !b[k] {
			m[k] = true
		}
	}
	return m
}

func (s typeSet) or(t typeSet) typeSet {
	switch {
	case !s.neg && !t.neg:
		return typeSet{names: union(s.names, t.names)}
	case s.neg && t.neg:
		return typeSet{neg: true, names: inter(s.names, t.names)}
	case s.neg:
		return typeSet{neg: true, names: minus(s.names, t.names)}
	default:
		return typeSet{neg: true, names: minus(t.names, s.names)}
	}
}

func (s typeSet) and(t typeSet) typeSet {
	switch {
	case !s.neg && !t.neg:
		return typeSet{names: inter(s.names, t.names)}
	case s.neg && t.neg:
		return typeSet{neg: true, names: union(s.names, t.names)}
	case s.neg:
		return typeSet{names: minus(t.names, s.names)}
	default:
		return typeSet{names: minus(s.names, t.names)}
	}
}

func (s typeSet) sorted() []string {
	out := make([]string, 0, len(s.names))
	for k := range s.names {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// junction returns the operands of an and or an or node, and which it is.
func junction(n node) (kids []node, isAnd bool) {
	if a, ok := n.(*andNode); ok {
		return a.kids, true
	}
	return n.(*orNode).kids, false
}

// eventTypes computes the event types a resolved condition can match, like
// libsinsp's ppm_codes: and intersects, or unites, negations are pushed to
// the leaves; evt.type =, != and in give explicit sets; evt.num = 0 (the
// never_true macro) is empty; every other check is neutral (all types).
func eventTypes(n node, neg bool) typeSet {
	switch n := n.(type) {
	case *andNode, *orNode:
		kids, isAnd := junction(n)
		if neg {
			isAnd = !isAnd
		}
		var acc typeSet
		for i, k := range kids {
			t := eventTypes(k, neg)
			if i == 0 {
				acc = t
			} else if isAnd {
				acc = acc.and(t)
			} else {
				acc = acc.or(t)
			}
		}
		return acc
	case *notNode:
		return eventTypes(n.x, !neg)
	case *checkNode:
		if n.lhs.xform != "" || n.rhs != nil {
			return allTypes()
		}
		switch n.lhs.field {
		case "evt.type":
			var s typeSet
			switch n.op {
			case "=", "==", "in":
				names := make([]string, len(n.vals))
				for i, v := range n.vals {
					names[i] = v.text
				}
				s = typeSet{names: setOf(names...)}
			case "!=":
				s = typeSet{neg: true, names: setOf(n.vals[0].text)}
			default:
				return allTypes()
			}
			if neg {
				s.neg = !s.neg
			}
			return s
		case "evt.num":
			if !neg && (n.op == "=" || n.op == "==") && len(n.vals) == 1 && n.vals[0].text == "0" {
				return noTypes()
			}
		}
	}
	return allTypes()
}

// capturedTypes returns the sensor event types in s, in order.
func capturedTypes(s typeSet, captured []event.Type) []event.Type {
	var out []event.Type
	for _, t := range captured {
		if s.has(t.String()) {
			out = append(out, t)
		}
	}
	return out
}

// missingTypes returns the names in a positive set the sensor does not capture.
func missingTypes(s typeSet, captured []event.Type) []string {
	if s.neg {
		return nil
	}
	have := make(map[string]bool)
	for _, t := range captured {
		have[t.String()] = true
	}
	var out []string
	for _, n := range s.sorted() {
		if !have[n] {
			out = append(out, n)
		}
	}
	return out
}

// IsFalcoEventType reports whether name is an evt.type value Falco knows,
// whether or not this build can represent or capture it.
func IsFalcoEventType(name string) bool { return knownEventNames()[name] }
