// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tripline kernel capture: exec, open, connect, fork and exit.
 *
 * Hooks (tracepoints only): the exit of each captured syscall, through the
 * syscalls/sys_exit_<name> tracepoint of each (tl_sys_exit_tp: only the
 * syscalls captured run a program) or, without tracefs, the raw
 * tp_btf/sys_exit (tl_sys_exit: every syscall of the host runs it); both
 * dispatch on the syscall number through the `syscalls` array (set from Go
 * per arch) to one body. sched_process_exec
 * emits successful execs, sched_process_fork and sched_process_exit the
 * process lifecycle. There is no sys_enter program: the arguments are still
 * in the saved registers at sys_exit (as in Falco's modern probe), so one
 * program per syscall instead of two, and no per-thread state. The record
 * joins the arguments with what only exists afterwards (the fd and its
 * resolved path, the socket's local address). Kernel objects are read with
 * direct BTF loads (bpf_rdonly_cast) rather than a helper call per field.
 * Records are built in a per-CPU buffer and copied to one ring buffer,
 * waking the reader only when enough is queued.
 */
#include "headers/vmlinux_min.h"
#include "helpers.h"
#include "tripline.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PF_KTHREAD 0x00200000
#define AT_FDCWD -100
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115
#define UNIX_ADDR_MAX 110 /* sizeof(struct sockaddr_un) */
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define SB_RDONLY 1
#define MNT_READONLY 0x40
#define S_IMMUTABLE 8 /* inode->i_flags */
#define CAP_DAC_OVERRIDE 1
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define SIGCHLD 17
#define CLONE_VM 0x100
#define CLONE_VFORK 0x4000

#define PATH_DEPTH 128   /* dentry components walked */
#define CGROUP_DEPTH 32  /* kernfs components walked */
#define DATA_OFF_MAX 16383 /* strings start below this offset (verifier bound) */

#if defined(__TARGET_ARCH_x86)
#define SYSCALL_ID(regs) ((regs)->orig_ax)
#define ARG0(regs) ((regs)->di)
#define ARG1(regs) ((regs)->si)
#define ARG2(regs) ((regs)->dx)
#define ARG3(regs) ((regs)->r10)
#define ARG4(regs) ((regs)->r8)
#define ARG5(regs) ((regs)->r9)
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_ID(regs) ((regs)->syscallno)
#define ARG0(regs) ((regs)->orig_x0)
#define ARG1(regs) ((regs)->regs[1])
#define ARG2(regs) ((regs)->regs[2])
#define ARG3(regs) ((regs)->regs[3])
#define ARG4(regs) ((regs)->regs[4])
#define ARG5(regs) ((regs)->regs[5])
#endif

/* The arguments of a 32-bit syscall, widened (see tl_sys_exit_compat). */
struct tl_cargs {
	__u64 a[6];
};

/* SYS_ARG is argument n of the syscall being traced: from the registers of
 * a native one (ca NULL, known at compile time in each program), else from
 * ca. */
#define SYS_ARG(regs, ca, n) ((ca) ? (ca)->a[n] : ARG##n(regs))

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_config);
} config SEC(".maps");

/* syscall number -> tl_type (0: not interesting); the 32-bit (compat)
 * syscalls' numbers from TL_SYSCALL_TABLE on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * TL_SYSCALL_TABLE);
	__type(key, __u32);
	__type(value, __u8);
} syscalls SEC(".maps");

/* The counters: one entry per possible CPU (userspace sizes the map), the
 * running CPU's taken. Not a per-CPU map: its values are reached through
 * the per-CPU offset, one more page for a dropped open to touch. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_event);
} evbuf SEC(".maps");

/* The identity each task last sent (see submit). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tl_ident_cache);
} idents SEC(".maps");

/* The last identity generation handed out. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} idgen SEC(".maps");

struct tl_scratch {
	char path[TL_PATH_MAX + 256];
	char name[256];
	struct tl_kf_prefix kf_prefix;
	struct tl_kf_name kf_name;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_scratch);
} scratch SEC(".maps");

/* The current syscall's arguments and the user memory they point to. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_args);
} argbuf SEC(".maps");

/* tgids followed by the pid filter (descendants of config.pid). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, __u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TL_KF_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_kf_prefix);
	__type(value, __u64);
} kf_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TL_KF_ENTRIES);
	__type(key, struct tl_kf_name);
	__type(value, __u64);
} kf_names SEC(".maps");

/* The file names of the file-change filter (kf_file_pass). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TL_KF_ENTRIES);
	__type(key, struct tl_kf_name);
	__type(value, struct tl_kf_fname);
} kf_fnames SEC(".maps");

/* The flags tests of the file-change filter, by type. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TL_NTYPES);
	__type(key, __u32);
	__type(value, struct tl_kf_fflag);
} kf_fflags SEC(".maps");

/* Texts a path must contain, each starting with '/': looked up as a prefix
 * of the path's tail at each '/'. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TL_KF_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_kf_prefix);
	__type(value, __u64);
} kf_contains SEC(".maps");

/* The rules' socket filter (see struct tl_kf_sock). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_kf_sock);
} kf_sock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TL_KF_PORT_IVS);
	__type(key, __u32);
	__type(value, struct tl_kf_port_iv);
} kf_port_ivs SEC(".maps");

/* Remote addresses: the terms an address in the prefix passes (kf_addrs)
 * or fails (kf_notaddrs); each prefix carries the bits of the shorter
 * ones that contain it. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TL_KF_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_kf_addr);
	__type(value, __u64);
} kf_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TL_KF_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_kf_addr);
	__type(value, __u64);
} kf_notaddrs SEC(".maps");

static __always_inline struct tl_config *get_config(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&config, &z);
}

static __always_inline struct tl_scratch *get_scratch(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&scratch, &z);
}

/* Each CPU has its entry and our programs run with preemption off (on
 * tracepoints) and never in interrupts: plain increments cannot race, and
 * cost less than locked ones. */
static __always_inline struct tl_stats *get_stats(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&stats, &cpu);
}

static __always_inline bool pass_filters(struct tl_config *c, struct task_struct *t, __u32 tgid)
{
	if (c->self_tgid && tgid == c->self_tgid)
		return false;
	if (c->flags & TL_CFG_PID) {
		if (tgid != c->pid && !bpf_map_lookup_elem(&tracked, &tgid))
			return false;
	}
	if (c->flags & TL_CFG_COMM) {
		__u64 comm[2] = {};
		bpf_probe_read_kernel(comm, sizeof(comm), &t->comm);
		__u64 *want = (__u64 *)c->comm;
		if (comm[0] != want[0] || comm[1] != want[1])
			return false;
	}
	return true;
}

static __always_inline struct upid read_upid(struct pid *p, unsigned int level)
{
	struct upid u = {};
	if (level == 0) { /* the initial pid namespace: a constant offset */
		u.nr = p->numbers[0].nr;
		u.ns = p->numbers[0].ns;
		return u;
	}
	if (level > 32)
		return u;
	bpf_probe_read_kernel(&u, sizeof(u), (void *)&p->numbers[0] + level * sizeof(struct upid));
	return u;
}

/* new_encode_dev: the dev_t userspace sees in stat(2). */
static __always_inline __u32 encode_dev(__u32 major, __u32 minor)
{
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
}

/* fill_task reads the task identity. t is a BTF pointer (tracepoint
 * argument or bpf_get_current_task_btf), so chains of struct pointers are
 * plain loads that the verifier guards (a fault reads as zero). */
static __always_inline void fill_task(struct tl_event *e, struct task_struct *t)
{
	e->tid = t->pid;
	e->pid = t->tgid;
	e->ppid = t->real_parent->tgid;
	bpf_probe_read_kernel(e->comm, sizeof(e->comm), &t->comm);

	struct cred *cr = t->cred;
	e->uid = cr->uid.val;
	e->gid = cr->gid.val;
	e->euid = cr->euid.val;
	e->egid = cr->egid.val;
	e->cap_eff = cr->cap_effective.val;
	e->cap_perm = cr->cap_permitted.val;
	e->cap_inh = cr->cap_inheritable.val;
	if (core_field_exists(t->loginuid))
		e->loginuid = t->loginuid.val;
	else
		e->loginuid = 0xffffffff;

	/* numbers[level] has a variable offset: read through the helper. */
	struct pid *tp = t->thread_pid;
	unsigned int level = tp->level;
	struct upid u = read_upid(tp, level);
	e->vtid = u.nr;
	e->pidns = KPTR(pid_namespace, u.ns)->ns.inum;
	struct task_struct *leader = t->group_leader;
	e->vpid = read_upid(leader->thread_pid, level).nr;
	e->start_time = leader->start_boottime;

	struct signal_struct *sig = t->signal;
	e->sid = sig->pids[PIDTYPE_SID]->numbers[0].nr;
	struct tty_struct *tty = sig->tty;
	if (tty) {
		struct tty_driver *drv = tty->driver;
		e->tty = encode_dev(drv->major, drv->minor_start + tty->index);
	}
	e->mntns = t->nsproxy->mnt_ns->ns.inum;
	e->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
}

/* ---- path building ---------------------------------------------------- */

/* Paths are built right to left at the end of scratch.path: pos is where
 * the built part starts (TL_PATH_MAX: nothing yet). */

/* prepend puts "/" and len bytes of kernel memory at src in front of the
 * path at *pos; false when they do not fit. */
static __always_inline bool prepend(struct tl_scratch *s, __u32 *pos, const void *src, __u32 len)
{
	__u32 p = *pos;
	if (len > 255 || p < len + 2)
		return false;
	p -= len;
	bpf_probe_read_kernel(&s->path[p & (TL_PATH_MAX - 1)], len & 255, src);
	p -= 1;
	s->path[p & (TL_PATH_MAX - 1)] = '/';
	*pos = p;
	return true;
}

/* path_or_root returns pos, or the position of a lone "/" when nothing
 * was built. */
static __always_inline __u32 path_or_root(struct tl_scratch *s, __u32 pos)
{
	if (pos < TL_PATH_MAX)
		return pos;
	s->path[TL_PATH_MAX - 1] = '/';
	return TL_PATH_MAX - 1;
}

/* ---- dentry walk ------------------------------------------------------ */

/* Where a walk up a path stands: a dentry and the mount it is seen in. */
struct walk_pos {
	__u64 dentry;
	__u64 mnt; /* struct mount * */
	__u64 mnt_root;
};

static __always_inline struct walk_pos walk_start(struct dentry *dentry, struct vfsmount *vfs)
{
	return (struct walk_pos){
		.dentry = (__u64)dentry,
		.mnt = (__u64)vfs - core_field_offset(((struct mount *)0)->mnt),
		.mnt_root = (__u64)KPTR(vfsmount, vfs)->mnt_root,
	};
}

/* walk_up moves p one step toward the root and returns the dentry of the
 * path component it went past: NULL when it went from a mount's root to
 * its mount point (no component), or, setting *done, when p is at the root
 * of the mount namespace or of a filesystem not mounted here. */
static __always_inline struct dentry *walk_up(struct walk_pos *p, __u32 *done)
{
	struct dentry *d = KPTR(dentry, p->dentry);
	struct mount *m = KPTR(mount, p->mnt);
	if (p->dentry == p->mnt_root) {
		struct mount *pm = m->mnt_parent;
		if (!pm || (__u64)pm == p->mnt) {
			*done = 1;
			return NULL;
		}
		p->dentry = (__u64)m->mnt_mountpoint;
		p->mnt = (__u64)pm;
		p->mnt_root = (__u64)pm->mnt.mnt_root;
		return NULL;
	}
	struct dentry *parent = d->d_parent;
	if (!parent || (__u64)parent == p->dentry) {
		*done = 1;
		return NULL;
	}
	p->dentry = (__u64)parent;
	return d;
}

struct walk_ctx {
	struct walk_pos at;
	__u32 pos; /* path is scratch.path[pos..TL_PATH_MAX) */
	__u32 done;
};

static long walk_step(__u64 i, struct walk_ctx *w)
{
	struct tl_scratch *s = get_scratch();
	if (!s)
		return 1;
	struct dentry *d = walk_up(&w->at, &w->done);
	if (!d)
		return w->done != 0;
	__u32 len = d->d_name.len;
	if (len > 255)
		len = 255;
	if (!prepend(s, &w->pos, d->d_name.name, len))
		return 1; /* too long: truncated */
	return 0;
}

/* walk_path builds the absolute path of (dentry, vfsmount) at the end of
 * scratch.path and returns its start position (TL_PATH_MAX when unknown). */
static __always_inline __u32 walk_path(struct tl_scratch *s, struct dentry *dentry, struct vfsmount *vfs, __u32 *flags)
{
	if (!dentry || !vfs)
		return TL_PATH_MAX;
	struct walk_ctx w = {.at = walk_start(dentry, vfs), .pos = TL_PATH_MAX};
	bpf_loop(PATH_DEPTH, walk_step, &w, 0);
	if (!w.done)
		*flags |= TL_F_PATH_TRUNC;
	return path_or_root(s, w.pos);
}

/* ---- cgroup (kernfs) walk --------------------------------------------- */

struct kn_ctx {
	__u64 kn;
	__u32 pos;
	__u32 done;
};

static long kn_step(__u64 i, struct kn_ctx *w)
{
	struct tl_scratch *s = get_scratch();
	if (!s)
		return 1;
	struct kernfs_node *kn = KPTR(kernfs_node, w->kn);
	__u64 parent;
	if (core_field_exists(kn->__parent))
		parent = (__u64)kn->__parent;
	else
		parent = (__u64)KPTR(kernfs_node___old, w->kn)->parent;
	if (!parent) {
		w->done = 1; /* the hierarchy root has no name in the path */
		return 1;
	}
	long n = bpf_probe_read_kernel_str(s->name, sizeof(s->name), kn->name);
	if (n > 1 && !prepend(s, &w->pos, s->name, n - 1))
		return 1; /* too long: truncated */
	w->kn = parent;
	return 0;
}

static __always_inline __u32 walk_kn(struct tl_scratch *s, struct kernfs_node *kn, __u32 *flags)
{
	struct kn_ctx w = {.kn = (__u64)kn, .pos = TL_PATH_MAX};
	if (kn) {
		bpf_loop(CGROUP_DEPTH, kn_step, &w, 0);
		if (!w.done)
			*flags |= TL_F_CGROUP_TRUNC;
	}
	return w.pos;
}

/* ---- record assembly -------------------------------------------------- */

/* clear_event returns the CPU's record buffer with its header zeroed. */
static __always_inline struct tl_event *clear_event(void)
{
	__u32 z = 0;
	struct tl_event *e = bpf_map_lookup_elem(&evbuf, &z);
	if (e)
		__builtin_memset(e, 0, TL_HDR_SIZE);
	return e;
}

/* stamp_event sets what every record of type carries first: a clock read,
 * which a record built to be filtered takes only once it passes. */
static __always_inline void stamp_event(struct tl_event *e, __u8 type)
{
	e->ts = bpf_ktime_get_boot_ns();
	e->type = type;
	e->abi = TL_ABI_VERSION;
	e->cpu = bpf_get_smp_processor_id();
}

static __always_inline struct tl_event *new_event(__u8 type)
{
	struct tl_event *e = clear_event();
	if (e)
		stamp_event(e, type);
	return e;
}

/* put_scratch appends scratch.path[pos..TL_PATH_MAX) as string idx. */
static __always_inline __u32 put_scratch(struct tl_event *e, __u32 off, int idx, struct tl_scratch *s, __u32 pos)
{
	if (pos >= TL_PATH_MAX)
		return off;
	if (off > DATA_OFF_MAX) {
		e->flags |= TL_F_PATH_TRUNC;
		return off;
	}
	__u32 len = (TL_PATH_MAX - pos) & (TL_PATH_MAX - 1);
	bpf_probe_read_kernel(&e->data[off & DATA_OFF_MAX], len, &s->path[pos & (TL_PATH_MAX - 1)]);
	e->str[idx & 15].off = off;
	e->str[idx & 15].len = len;
	return off + len;
}

static __always_inline __u32 put_bytes(struct tl_event *e, __u32 off, int idx, const void *src, __u32 len)
{
	if (off > DATA_OFF_MAX)
		return off;
	asm volatile("" : "+r"(len)); /* keep the mask: the verifier needs it on every path */
	len &= TL_RAW_MAX - 1;
	bpf_probe_read_kernel(&e->data[off & DATA_OFF_MAX], len, src);
	e->str[idx & 15].off = off;
	e->str[idx & 15].len = len;
	return off + len;
}

static __always_inline __u32 put_kstr(struct tl_event *e, __u32 off, int idx, const char *src)
{
	if (off > DATA_OFF_MAX || !src)
		return off;
	long n = bpf_probe_read_kernel_str(&e->data[off & DATA_OFF_MAX], TL_RAW_MAX, src);
	if (n <= 1)
		return off;
	__u32 len = (n - 1) & (TL_RAW_MAX - 1);
	e->str[idx & 15].off = off;
	e->str[idx & 15].len = len;
	return off + len;
}

/* wire_section returns where the type's section starts in struct tl_event
 * and its size (see tripline.h). */
static __always_inline __u32 wire_section(__u8 ty, __u32 *size)
{
	if (ty == TL_EXECVE || ty == TL_EXECVEAT) {
		*size = 0;
		return 0;
	}
	if (ty >= TL_OPEN && ty <= TL_CREAT) {
		*size = TL_SEC_OPEN_SIZE;
		return TL_SEC_OPEN;
	}
	if (ty == TL_CONNECT) {
		*size = TL_SEC_CONNECT_SIZE;
		return TL_SEC_CONNECT;
	}
	if (ty >= TL_CLONE && ty <= TL_PROCEXIT) {
		*size = TL_SEC_FORK_SIZE;
		return TL_SEC_FORK;
	}
	*size = TL_SEC_SYS_SIZE;
	return TL_SEC_SYS;
}

/* ident_same tells whether ic holds e's identity as last sent in the
 * current epoch. */
static __always_inline bool ident_same(struct tl_ident_cache *ic, struct tl_event *e)
{
	if (!ic->gen || ic->epoch != e->epoch || ic->tid != e->tid)
		return false;
	__u64 *id = (__u64 *)&e->pid;
	__u64 diff = 0;
#pragma unroll
	for (int i = 0; i < 15; i++)
		diff |= id[i] ^ ic->ident[i];
	return diff == 0;
}

/* submit writes the record to the ring. The identity (pid .. comm) goes
 * only into the first record of a task and the first after any of it
 * changed (credentials, capabilities, namespaces, cgroup, comm, parent,
 * session, tty) or after userspace bumped config.epoch; other records carry
 * (tid, gen) naming it. Every record is built for the current task, so its
 * task storage is not shared. The new identity is committed only once the
 * ring reservation succeeded: after a lost record the next one resends it. */
static __always_inline void submit(struct tl_event *e, __u32 off, struct tl_config *c)
{
	struct tl_stats *st = get_stats();
	if (!st)
		return;
	if (off > TL_DATA_SIZE)
		off = TL_DATA_SIZE;
	e->data_len = off;
	e->epoch = c->epoch;
	struct tl_ident_cache *ic = NULL;
	struct task_struct *cur = bpf_get_current_task_btf();
	/* Only exit records tell userspace to forget a cached identity: without
	 * them every record carries its identity, uncached (gen 0). */
	if (cur->pid == e->tid && (c->type_mask & (1ull << TL_PROCEXIT)))
		ic = bpf_task_storage_get(&idents, cur, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	bool full = true;
	if (ic && ident_same(ic, e)) {
		full = false;
		e->gen = ic->gen;
	} else {
		e->flags |= TL_F_IDENT;
		e->gen = 0; /* no storage: sent, not cached */
		if (ic) {
			__u32 z = 0;
			__u64 *g = bpf_map_lookup_elem(&idgen, &z);
			if (g)
				e->gen = __sync_fetch_and_add(g, 1) + 1;
			if (!e->gen) /* wrapped, or no counter */
				ic = NULL;
		}
	}
	__u32 secsize;
	__u32 sec = wire_section(e->type, &secsize);
	__u32 size = TL_WIRE_HDR + (full ? TL_IDENT_SIZE : 0) + secsize + off;
	/* Each CPU wakes the reader once it has written wakeup_bytes since its
	 * last wakeup; a quiet ring is read on the reader's short deadline.
	 * A per-CPU count, because querying the ring's fill level reads cache
	 * lines that every producer and the reader write. */
	__u64 wflags = BPF_RB_NO_WAKEUP;
	if (st->unwoken + size >= c->wakeup_bytes) {
		wflags = BPF_RB_FORCE_WAKEUP;
		st->unwoken = 0;
	} else {
		st->unwoken += size;
	}
	__u32 ty = e->type & (TL_NTYPES - 1);
	st->seen++;
	st->seen_type[ty]++;
	struct bpf_dynptr dp;
	if (bpf_ringbuf_reserve_dynptr(&events, size, 0, &dp)) {
		bpf_ringbuf_discard_dynptr(&dp, 0);
		st->lost++;
		st->lost_type[ty]++;
		return;
	}
	/* The sizes add up to the reservation: the writes cannot fail. */
	__u32 w = TL_WIRE_HDR;
	bpf_dynptr_write(&dp, 0, e, TL_WIRE_HDR, 0);
	if (full) {
		bpf_dynptr_write(&dp, w, &e->pid, TL_IDENT_SIZE, 0);
		w += TL_IDENT_SIZE;
	}
	if (secsize) {
		bpf_dynptr_write(&dp, w, (void *)e + sec, secsize, 0);
		w += secsize;
	}
	if (off)
		bpf_dynptr_write(&dp, w, e->data, off, 0);
	bpf_ringbuf_submit_dynptr(&dp, wflags);
	if (full && ic) {
		__builtin_memcpy(ic->ident, &e->pid, TL_IDENT_SIZE);
		ic->tid = e->tid;
		ic->epoch = e->epoch;
		ic->gen = e->gen;
	}
	st->delivered++;
	if (e->flags & (TL_F_ARGV_TRUNC | TL_F_PATH_TRUNC | TL_F_CGROUP_TRUNC | TL_F_RAW_TRUNC | TL_F_ENV_TRUNC))
		st->truncated++;
}

static __always_inline struct kernfs_node *memory_kn(struct css_set *cs)
{
	if (!core_enum_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return NULL;
	__u32 id = core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (id >= 16)
		return NULL;
	struct cgroup_subsys_state *css = NULL;
	bpf_probe_read_kernel(&css, sizeof(css), (void *)&cs->subsys[0] + id * sizeof(void *));
	if (!css)
		return NULL;
	return KPTR(cgroup_subsys_state, css)->cgroup->kn;
}

/* put_cgroup appends the cgroup path naming the container: the v2 path, or
 * the v1 memory controller's path when v2 says "/" (hybrid hosts). */
static __always_inline __u32 put_cgroup(struct tl_event *e, __u32 off, struct tl_scratch *s, struct task_struct *t)
{
	struct css_set *cs = KPTR(task_struct, t)->cgroups;
	__u32 pos = walk_kn(s, cs->dfl_cgrp->kn, &e->flags);
	if (pos >= TL_PATH_MAX)
		pos = walk_kn(s, memory_kn(cs), &e->flags);
	return put_scratch(e, off, TL_S_CGROUP, s, path_or_root(s, pos));
}

static __always_inline bool name_is_memfd(struct dentry *d)
{
	char p[8] = {};
	bpf_probe_read_kernel(p, 6, d->d_name.name);
	return p[0] == 'm' && p[1] == 'e' && p[2] == 'm' && p[3] == 'f' && p[4] == 'd' && p[5] == ':';
}

/* overlay_flags says which overlayfs layer holds ino (0 off overlayfs). */
static __always_inline __u32 overlay_flags(struct inode *ino)
{
	if (ino->i_sb->s_magic != OVERLAYFS_SUPER_MAGIC)
		return 0;
	/* struct ovl_inode embeds the VFS inode followed by __upperdentry. */
	struct dentry *upper = NULL;
	bpf_probe_read_kernel(&upper, sizeof(upper), (void *)ino + core_type_size(struct inode));
	return upper && KPTR(dentry, upper)->d_inode ? TL_F_EXE_UPPER : TL_F_EXE_LOWER;
}

/* exe_writable tells whether t's fs credentials may write the executable:
 * the mode bits for owner, group or others (the primary group only, not
 * the supplementary ones), or CAP_DAC_OVERRIDE; never on a read-only mount
 * or superblock, or for an immutable inode. Best effort: ACLs and LSMs are
 * not consulted. */
static __always_inline bool exe_writable(struct task_struct *t, struct file *exe, struct inode *ino)
{
	if ((exe->f_path.mnt->mnt_flags & MNT_READONLY) ||
	    (ino->i_sb->s_flags & SB_RDONLY) || (ino->i_flags & S_IMMUTABLE))
		return false;
	struct cred *cr = KPTR(task_struct, t)->cred;
	if (cr->cap_effective.val & (1ull << CAP_DAC_OVERRIDE))
		return true;
	__u32 mode = ino->i_mode;
	if (cr->fsuid.val == ino->i_uid.val)
		return mode & 0200;
	if (cr->fsgid.val == ino->i_gid.val)
		return mode & 0020;
	return mode & 0002;
}

/* fill_exec adds exe path, argv, cwd, cgroup path and exe flags of t, whose
 * mm is the current one; exe is the executable file. */
static __always_inline __u32 fill_exec(struct tl_event *e, __u32 off, struct tl_config *c, struct task_struct *t, struct file *exe)
{
	struct tl_scratch *s = get_scratch();
	if (!s)
		return off;
	struct mm_struct *mm = KPTR(task_struct, t)->mm;
	if (!exe)
		exe = mm->exe_file;
	if (exe) {
		exe = KPTR(file, exe);
		struct dentry *d = exe->f_path.dentry;
		__u32 pos = walk_path(s, d, exe->f_path.mnt, &e->flags);
		off = put_scratch(e, off, TL_S_EXE, s, pos);
		struct inode *ino = d->d_inode;
		if (ino->i_nlink == 0 && name_is_memfd(d)) /* the load first: it spares the read */
			e->flags |= TL_F_EXE_MEMFD;
		e->flags |= overlay_flags(ino);
		if (exe_writable(t, exe, ino))
			e->flags |= TL_F_EXE_WRITABLE;
	}

	__u64 as = mm->arg_start, ae = mm->arg_end;
	if (ae > as && off <= DATA_OFF_MAX) {
		__u64 n = ae - as;
		__u32 max = c->argv_max;
		if (max > TL_ARGV_HARD_MAX - 1)
			max = TL_ARGV_HARD_MAX - 1;
		if (n > max) {
			n = max;
			e->flags |= TL_F_ARGV_TRUNC;
		}
		n &= TL_ARGV_HARD_MAX - 1;
		if (bpf_probe_read_user(&e->data[off & DATA_OFF_MAX], n, (void *)as) == 0) {
			e->str[TL_S_ARGV].off = off;
			e->str[TL_S_ARGV].len = n;
			off += n;
		}
	}

	struct fs_struct *fs = KPTR(task_struct, t)->fs;
	__u32 pos = walk_path(s, fs->pwd.dentry, fs->pwd.mnt, &e->flags);
	off = put_scratch(e, off, TL_S_CWD, s, pos);
	return put_cgroup(e, off, s, t);
}

/* put_env appends the environment of t's (new) mm, read like argv, as the
 * last string of an exec record: a record short of room drops it and flags
 * it rather than losing the exe path, cwd or cgroup. */
static __always_inline __u32 put_env(struct tl_event *e, __u32 off, struct tl_config *c, struct task_struct *t)
{
	__u32 max = c->env_max;
	if (max == 0)
		return off;
	struct mm_struct *mm = KPTR(task_struct, t)->mm;
	__u64 es = mm->env_start, ee = mm->env_end;
	if (ee <= es)
		return off;
	if (off > DATA_OFF_MAX) {
		e->flags |= TL_F_ENV_TRUNC;
		return off;
	}
	__u64 n = ee - es;
	if (max > TL_ENV_HARD_MAX - 1)
		max = TL_ENV_HARD_MAX - 1;
	if (n > max) {
		n = max;
		e->flags |= TL_F_ENV_TRUNC;
	}
	n &= TL_ENV_HARD_MAX - 1;
	if (bpf_probe_read_user(&e->data[off & DATA_OFF_MAX], n, (void *)es) == 0) {
		e->str[TL_S_ENV].off = off;
		e->str[TL_S_ENV].len = n;
		off += n;
	}
	return off;
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = t->files->fdt;
	unsigned int max = fdt->max_fds;
	if (fd >= max)
		return NULL;
	struct file **arr = fdt->fd;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f ? KPTR(file, f) : NULL;
}

/* ---- syscalls ---------------------------------------------------------- */

/* in_compat_syscall tells a 32-bit syscall (ia32 on x86_64, which any
 * 64-bit process can make with int $0x80): another numbering and other
 * argument registers, handled by tl_sys_exit_compat. t is the current
 * task, regs its saved registers. */
static __always_inline bool in_compat_syscall(struct task_struct *t, struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return t->thread_info.status & 0x0002; /* TS_COMPAT */
#else
	/* arm64: an AArch32 task's saved PSTATE is in a 32-bit mode
	 * (PSR_MODE32_BIT), and its syscall numbers are the compat table's. */
	return regs->pstate & 0x10;
#endif
}

static __always_inline bool is_open(__u8 ty) { return ty >= TL_OPEN && ty <= TL_CREAT; }
static __always_inline bool is_exec(__u8 ty) { return ty == TL_EXECVE || ty == TL_EXECVEAT; }

/* user_path returns the user path argument of an open or exec. */
static __always_inline const void *user_path(struct tl_args *a)
{
	__u8 ty = a->type;
	if (ty == TL_OPEN || ty == TL_CREAT || ty == TL_EXECVE)
		return (const void *)a->args[0];
	if (ty == TL_OPENAT || ty == TL_OPENAT2 || ty == TL_EXECVEAT)
		return (const void *)a->args[1];
	return NULL;
}

/* read_user_path copies the user path at uptr into a->buf. */
static __always_inline void read_user_path(struct tl_args *a, const void *uptr)
{
	if (!uptr)
		return;
	long n = bpf_probe_read_user_str(a->buf, TL_RAW_MAX, uptr);
	if (n > 0) {
		a->len = n - 1;
		if (n == TL_RAW_MAX)
			a->trunc = 1;
	}
}

/* read_args gathers the arguments of the syscall (type ty) from the
 * registers saved at entry (ca for a 32-bit one), and the user memory
 * they point to (path, open_how, sockaddr). The registers hold the arguments until the syscall returns;
 * user memory is read after the call, like Falco's modern probe: the
 * resolved path comes from the kernel's own objects, so a racing thread can
 * only change the raw path reported, not what was opened. An open's path
 * is left to open_exit, which reads it only for the opens it sends. */
static __always_inline struct tl_args *read_args(__u8 ty, struct pt_regs *regs, struct tl_cargs *ca)
{
	__u32 z = 0;
	struct tl_args *a = bpf_map_lookup_elem(&argbuf, &z);
	if (!a)
		return NULL;
	a->type = ty;
	a->len = 0;
	a->trunc = 0;
	a->compat = ca != NULL;
	a->args[0] = SYS_ARG(regs, ca, 0);
	a->args[1] = SYS_ARG(regs, ca, 1);
	a->args[2] = SYS_ARG(regs, ca, 2);
	a->args[3] = SYS_ARG(regs, ca, 3);
	a->args[4] = SYS_ARG(regs, ca, 4);
	a->args[5] = SYS_ARG(regs, ca, 5);

	if (ty == TL_OPENAT2) {
		/* struct open_how { u64 flags, mode, resolve; } -> args[2..4] */
		__u64 how[3] = {};
		bpf_probe_read_user(how, sizeof(how), (const void *)a->args[2]);
		a->args[2] = how[0];
		a->args[3] = how[1];
		a->args[4] = how[2];
	}
	/* connect's sockaddr: read by connect_exit when it needs it */
	if (is_exec(ty))
		read_user_path(a, user_path(a));
	return a;
}

/* user_sockaddr copies connect's sockaddr (arguments 1 and 2) from the
 * caller's memory into a->buf and points *raw at it (*rawlen 0 when it
 * cannot be read). */
static __always_inline void user_sockaddr(struct tl_args *a, const void **raw, __u32 *rawlen)
{
	__u64 n = a->args[2];
	if (n > TL_SOCKADDR_MAX)
		n = TL_SOCKADDR_MAX;
	if (bpf_probe_read_user(a->buf, n, (const void *)a->args[1]) == 0)
		a->len = n;
	*raw = a->buf;
	*rawlen = a->len;
}

/* slash_bytes returns 0x80 in each byte of v that is '/' (exact per byte,
 * unlike the has-zero trick). */
static __always_inline __u64 slash_bytes(__u64 v)
{
	__u64 t = v ^ 0x2f2f2f2f2f2f2f2full;
	return ~(((t & 0x7f7f7f7f7f7f7f7full) + 0x7f7f7f7f7f7f7f7full) | t | 0x7f7f7f7f7f7f7f7full);
}

/* byte_in tells whether bitmap m (256 bits) holds c. */
static __always_inline bool byte_in(const __u64 m[4], __u8 c)
{
	return m[(c >> 6) & 3] & (1ull << (c & 63));
}

/* kf_name_may is kf_open_pass's condition for looking a file name up: a
 * name of its length and first byte c0 is in kf_names (longer names are
 * never pushed down). */
static __always_inline bool kf_name_may(struct tl_kfilter *k, __u32 n, __u8 c0)
{
	return n < TL_KF_NAME_MAX && (k->name_lens & (1ull << n)) && (n == 0 || byte_in(k->name_first, c0));
}

struct kf_scan_ctx {
	__u64 bit;
	__u64 first[4]; /* tl_kfilter.contains_first */
	__u32 pos;
	__u32 found;
};

/* kf_scan_step scans the 8 path bytes at pos+8i: at each '/' followed by a
 * byte some text starts with, it looks the path's tail up in kf_contains. */
static long kf_scan_step(__u64 i, struct kf_scan_ctx *x)
{
	struct tl_scratch *s = get_scratch();
	if (!s)
		return 1;
	__u32 p = x->pos + (__u32)i * 8;
	if (p >= TL_PATH_MAX)
		return 1;
	p &= TL_PATH_MAX - 1;
	__u64 v;
	__builtin_memcpy(&v, &s->path[p], 8); /* scratch.path has slack past TL_PATH_MAX */
	if (!slash_bytes(v))
		return 0; /* no '/' in these 8 bytes */
#pragma unroll
	for (int j = 0; j < 8; j++) {
		__u32 q = p + j;
		if (q >= TL_PATH_MAX)
			return 1;
		if (s->path[q & (TL_PATH_MAX - 1)] != '/')
			continue;
		__u8 c = s->path[(q & (TL_PATH_MAX - 1)) + 1];
		if (!byte_in(x->first, c))
			continue;
		__u32 len = TL_PATH_MAX - q;
		if (len > TL_KF_PREFIX_MAX)
			len = TL_KF_PREFIX_MAX;
		s->kf_prefix.prefixlen = len * 8;
		bpf_probe_read_kernel(s->kf_prefix.data, TL_KF_PREFIX_MAX, &s->path[q & (TL_PATH_MAX - 1)]);
		__u64 *m = bpf_map_lookup_elem(&kf_contains, &s->kf_prefix);
		if (m && (*m & x->bit)) {
			x->found = 1;
			return 1;
		}
	}
	return 0;
}

struct kf_name_ctx {
	__u32 pos;
	__u32 n;
};

/* kf_name_step finds the last '/' of the path, i bytes before its end:
 * the file name is the n = i bytes after it. */
static long kf_name_step(__u64 i, struct kf_name_ctx *x)
{
	struct tl_scratch *s = get_scratch();
	if (!s)
		return 1;
	__u32 p = TL_PATH_MAX - 1 - (__u32)i;
	if (p < x->pos || p >= TL_PATH_MAX)
		return 1;
	if (s->path[p & (TL_PATH_MAX - 1)] == '/') {
		x->n = i;
		return 1;
	}
	return 0;
}

/* kf_name_len returns the length of the file name, the bytes after the
 * path's last '/' (TL_KF_NAME_MAX when that is as long or longer). hint,
 * the opened dentry's name length, is usually right and is checked
 * against the path: the byte before the last hint bytes is '/' and none
 * of them is. Otherwise (a bind-mounted file, whose dentry is named after
 * the source; or a pseudo file's name with '/', outside any mount) the path
 * is scanned. */
static __always_inline __u32 kf_name_len(struct tl_scratch *s, __u32 pos, __u32 hint)
{
	__u32 sep = TL_PATH_MAX - 1 - hint;
	asm volatile("" : "+r"(sep)); /* keep the mask: clang drops it, the verifier needs it */
	if (hint < TL_KF_NAME_MAX && pos <= sep && s->path[sep & (TL_PATH_MAX - 1)] == '/') {
		__u64 found = 0;
		__u32 start = TL_PATH_MAX - hint; /* the name is path[start..TL_PATH_MAX) */
#pragma unroll
		for (int j = 0; j < TL_KF_NAME_MAX / 8; j++) {
			__u32 at = TL_PATH_MAX - TL_KF_NAME_MAX + j * 8;
			if (at + 8 <= start)
				continue;
			__u64 v;
			__builtin_memcpy(&v, &s->path[at], 8);
			__u64 m = slash_bytes(v);
			if (at < start) /* keep the bytes at start.. only (little-endian) */
				m = start - at >= 8 ? 0 : m & (~0ull << ((start - at) * 8));
			found |= m;
		}
		if (!found)
			return hint;
	}
	struct kf_name_ctx nx = {.pos = pos, .n = TL_KF_NAME_MAX};
	bpf_loop(TL_KF_NAME_MAX, kf_name_step, &nx, 0);
	return nx.n;
}

/* kf_bit returns the filter bit of an open of type ty (0: type not
 * filtered). */
static __always_inline __u64 kf_bit(struct tl_kfilter *k, __u8 ty, __u32 oflags)
{
	if (!(k->types & (1ull << ty)))
		return 0;
	__u32 acc = TL_ACC_RW;
	if (ty == TL_CREAT || (oflags & 3) == O_WRONLY)
		acc = TL_ACC_WO;
	else if ((oflags & 3) == 0)
		acc = TL_ACC_RO;
	return TL_KF_BIT(ty, acc);
}

/* kf_open_early decides what needs no path: false drops the open before
 * its path is walked (a failed open, or an access mode no rule with a path
 * condition wants). */
static __always_inline bool kf_open_early(struct tl_kfilter *k, __u64 bit, long ret)
{
	if (!bit)
		return true;
	if (ret < 0) { /* no resolved path: the access mode and the errno decide */
		__u64 err = -ret;
		return (k->fail_pass & bit) || (err < TL_KF_ERRNO_MAX && (k->fail_errno[err] & bit));
	}
	return (k->any_path | k->path_bits) & bit;
}

/* kf_open_pass applies the rules' kernel filter to a successful open that
 * passed kf_open_early: false when no rule can match it. pos is where its
 * resolved path starts in scratch.path (TL_PATH_MAX: none), hint the
 * opened dentry's name length (see kf_name_len). The path and file name
 * are the bytes userspace gets as fd.name, so the filter sees what the
 * rules see. The map lookups are skipped when the prefix_first, name_lens
 * and name_first conditions say they cannot let the open pass. */
static __always_inline bool kf_open_pass(struct tl_kfilter *k, __u64 bit, struct tl_scratch *s, __u32 pos, __u32 hint)
{
	if (!bit || (k->any_path & bit) || pos >= TL_PATH_MAX)
		return true;

	/* A path of one byte is "/": only the prefix "" or "/" (any_path)
	 * starts it. */
	__u32 len = TL_PATH_MAX - pos;
	__u8 b1 = len > 1 ? s->path[(pos + 1) & (TL_PATH_MAX - 1)] : 0;
	if (len > TL_KF_PREFIX_MAX)
		len = TL_KF_PREFIX_MAX;
	if (k->prefix_first[b1] & bit) {
		s->kf_prefix.prefixlen = len * 8;
		bpf_probe_read_kernel(s->kf_prefix.data, TL_KF_PREFIX_MAX, &s->path[pos & (TL_PATH_MAX - 1)]);
		__u64 *m = bpf_map_lookup_elem(&kf_prefixes, &s->kf_prefix);
		if (m && (*m & bit))
			return true;
	}

	/* The file name: the bytes after the last '/'. */
	__u32 n = kf_name_len(s, pos, hint);
	__u8 c0 = n ? s->path[(TL_PATH_MAX - n) & (TL_PATH_MAX - 1)] : 0;
	if (kf_name_may(k, n, c0)) {
		__u64 *m;
		asm volatile("" : "+r"(n)); /* keep the masks below */
		__builtin_memset(&s->kf_name, 0, sizeof(s->kf_name));
		bpf_probe_read_kernel(s->kf_name.name, n & (TL_KF_NAME_MAX - 1), &s->path[(TL_PATH_MAX - n) & (TL_PATH_MAX - 1)]);
		m = bpf_map_lookup_elem(&kf_names, &s->kf_name);
		if (m && (*m & bit))
			return true;
	}

	if (!(k->contains & bit))
		return false;
	if (TL_PATH_MAX - pos > TL_KF_SCAN_MAX)
		return true;
	struct kf_scan_ctx x = {.bit = bit, .pos = pos};
	__builtin_memcpy(x.first, k->contains_first, sizeof(x.first));
	bpf_loop((TL_PATH_MAX - pos + 7) / 8, kf_scan_step, &x, 0);
	return x.found;
}

/* kf_pre_ctx gathers, without copying a name, what kf_open_pass's cheap
 * conditions test on the path beyond its file name (which kf_open_maybe
 * reads first): whether a component starts with a byte a text starts with,
 * and the top component's first byte. */
struct kf_pre_ctx {
	struct walk_pos at;
	__u64 first[4]; /* tl_kfilter.contains_first */
	__u32 len;      /* bytes of the path: a '/' and the name per component */
	__u8 top0;      /* the top component's first byte */
	__u8 contains;  /* a component starts with a contains_first byte */
	__u32 done;     /* reached the root (not: a name stored out of its
			 * dentry, or a path over TL_KF_SCAN_MAX bytes) */
};

/* inline_name0 reads the first byte of d's name when the dentry stores the
 * name itself (short names): a direct load, where copying the name takes a
 * helper call. false when the name is stored elsewhere. */
static __always_inline bool inline_name0(struct dentry *d, __u8 *c)
{
	__u64 name = (__u64)d->d_name.name;
	if (core_field_exists(d->d_shortname)) {
		if (name != (__u64)d + core_field_offset(d->d_shortname))
			return false;
		*c = d->d_shortname.string[0];
		return true;
	}
	struct dentry___old *o = (void *)d;
	if (!core_field_exists(o->d_iname) || name != (__u64)d + core_field_offset(o->d_iname))
		return false;
	*c = o->d_iname[0];
	return true;
}

/* kf_pre_step goes one component up the path, as walk_step does. */
static long kf_pre_step(__u64 i, struct kf_pre_ctx *w)
{
	struct dentry *d = walk_up(&w->at, &w->done);
	if (!d)
		return w->done != 0;
	__u32 len = d->d_name.len;
	__u8 c;
	if (len == 0 || !inline_name0(d, &c)) /* an inline name is short */
		return 1;
	w->len += len + 1;
	if (w->len > TL_KF_SCAN_MAX)
		return 1;
	w->top0 = c;
	if (byte_in(w->first, c))
		w->contains = 1;
	return 0;
}

/* kf_open_maybe decides kf_open_pass's cheap conditions on the dentry chain,
 * before the path is built: false only when the path would fail them all (no
 * prefix starts with its first byte, no name has its file name's length and
 * first byte, no text starts at one of its '/'), so kf_open_pass would drop
 * the open; a dropped open then costs no name copy. That the '/' kf_open_pass
 * scans for are the components' separators holds because no dentry reached
 * through a mount has '/' in its name (lookups and readdir refuse it; the
 * pseudo files whose names may, like memfds, have no mounted path and are
 * left to kf_open_pass). So are the paths it cannot read so: a name stored
 * out of its dentry, empty or over 255 bytes, a path over TL_KF_SCAN_MAX
 * bytes or deeper than PATH_DEPTH, "/", a bind-mounted file. */
static __always_inline bool kf_open_maybe(struct tl_kfilter *k, __u64 bit, struct file *f)
{
	if (!bit || (k->any_path & bit) || !f)
		return true;
	struct dentry *dentry = f->f_path.dentry;
	struct vfsmount *vfs = f->f_path.mnt;
	if (!dentry || !vfs)
		return true;
	struct kf_pre_ctx w = {.at = walk_start(dentry, vfs)};
	/* The file name is the opened dentry's, unless that is a mount's root
	 * (a bind-mounted file): then the mount point's. */
	if (w.at.dentry == w.at.mnt_root)
		return true;
	__u32 n = dentry->d_name.len;
	__u8 c0;
	if (!n || !inline_name0(dentry, &c0))
		return true;
	if (kf_name_may(k, n, c0))
		return true;
	__builtin_memcpy(w.first, k->contains_first, sizeof(w.first));
	bpf_loop(PATH_DEPTH, kf_pre_step, &w, 0);
	if (!w.done || !w.len)
		return true;
	return (k->prefix_first[w.top0] & bit) || ((k->contains & bit) && w.contains);
}

static __always_inline struct tl_stats *kf_count(__u8 ty)
{
	struct tl_stats *st = get_stats();
	if (!st)
		return NULL;
	/* Callers have bounded ty, so clang drops the mask below; the
	 * verifier does not always keep that bound. */
	asm volatile("" : "+r"(ty));
	st->filtered++;
	st->filtered_type[ty & (TL_NTYPES - 1)]++;
	return st;
}

/* kf_open_drop applies the filter's tests that need no path (access mode,
 * outcome, first bytes of the path's names) to an open of type ty, filter
 * bit bit and file f: true drops it, counted. */
static __always_inline bool kf_open_drop(struct tl_kfilter *k, __u64 bit, __u8 ty, long ret, struct file *f)
{
	if (!kf_open_early(k, bit, ret)) {
		kf_count(ty);
		return true;
	}
	if (ret >= 0 && !kf_open_maybe(k, bit, f)) {
		struct tl_stats *st = kf_count(ty);
		if (st)
			st->filtered_early++;
		return true;
	}
	return false;
}

/* put_base appends, as string idx, the directory a relative path given
 * with dirfd is resolved from (the working directory for AT_FDCWD). */
static __always_inline __u32 put_base(struct tl_event *e, __u32 off, int idx, struct tl_scratch *s,
				      struct task_struct *t, int dirfd, __u32 flag)
{
	struct dentry *d = NULL;
	struct vfsmount *mnt = NULL;
	if (dirfd == AT_FDCWD) {
		struct fs_struct *fs = t->fs;
		d = fs->pwd.dentry;
		mnt = fs->pwd.mnt;
	} else {
		struct file *f = fd_file(t, dirfd);
		if (f) {
			d = f->f_path.dentry;
			mnt = f->f_path.mnt;
		}
	}
	if (!d)
		return off;
	e->flags |= flag;
	return put_scratch(e, off, idx, s, walk_path(s, d, mnt, &e->flags));
}

/* open_exit reports an open that open_drop let pass, f its file. The
 * resolved path comes before the kernel filter's last test (and, for
 * openat2, the tests open_drop left to it); the record, the raw user path
 * and the task identity only for an open that passes. */
static __always_inline void open_exit(struct tl_config *c, struct tl_args *a, long ret, struct task_struct *t, struct file *f)
{
	__u8 ty = a->type;
	__s32 dirfd = AT_FDCWD;
	__u32 oflags, mode;
	__u64 resolve = 0;
	switch (ty) {
	case TL_OPEN:
		oflags = a->args[1];
		mode = a->args[2];
		break;
	case TL_CREAT:
		oflags = O_CREAT | O_WRONLY | O_TRUNC;
		mode = a->args[1];
		break;
	default: /* openat, openat2 (open_how unpacked by read_args) */
		dirfd = a->args[0];
		oflags = a->args[2];
		mode = a->args[3];
		if (ty == TL_OPENAT2)
			resolve = a->args[4];
	}
	struct tl_kfilter *k = &c->kf;
	__u64 bit = kf_bit(k, ty, oflags);
	if (ty == TL_OPENAT2 && kf_open_drop(k, bit, ty, ret, f))
		return;
	struct tl_scratch *s = get_scratch();
	if (!s)
		return;

	__u32 flags = 0;
	__u32 pos = TL_PATH_MAX;
	if (ret >= 0) {
		__u32 hint = TL_KF_NAME_MAX;
		if (f) {
			struct dentry *d = f->f_path.dentry;
			pos = walk_path(s, d, f->f_path.mnt, &flags);
			hint = d->d_name.len;
		}
		/* Before the raw path and the task identity are read: a dropped
		 * open costs the resolved path only. */
		if (!kf_open_pass(k, bit, s, pos, hint)) {
			kf_count(ty);
			return;
		}
	} /* else kf_open_early has let the failed open pass */
	read_user_path(a, user_path(a));

	struct tl_event *e = new_event(ty);
	if (!e)
		return;
	fill_task(e, t);
	e->res = ret;
	e->flags = flags;
	if (a->trunc)
		e->flags |= TL_F_RAW_TRUNC;
	e->dirfd = dirfd;
	e->oflags = oflags;
	e->mode = mode;
	e->resolve = resolve;
	if (f) {
		struct inode *ino = f->f_inode;
		__u32 dev = ino->i_sb->s_dev;
		e->dev = encode_dev(dev >> 20, dev & 0xfffff);
		e->ino = ino->i_ino;
	}
	__u32 off;
	if (ret < 0 && a->len > 0 && a->buf[0] != '/') /* failed relative open: its base directory */
		off = put_base(e, 0, TL_S_PATH, s, t, dirfd, TL_F_PATH_IS_BASE);
	else
		off = put_scratch(e, 0, TL_S_PATH, s, pos);
	off = put_bytes(e, off, TL_S_RAW, a->buf, a->len);
	submit(e, off, c);
}

/* fill_sock reads the family, type, protocol and both ends of the socket
 * file f into e (false when f is not a socket). For a unix socket *raw is
 * set to the address as the kernel holds it: the peer's when connected,
 * else (when own) its own bound address. */
static __always_inline bool fill_sock(struct tl_event *e, struct file *f, bool own, const void **raw, __u32 *rawlen)
{
	if (!f || (f->f_inode->i_mode & S_IFMT) != S_IFSOCK)
		return false;
	struct socket *sock = KPTR(socket, f->private_data);
	struct sock *sk = sock->sk;
	__u16 fam = sk->__sk_common.skc_family;
	e->family = fam;
	e->sock_type = sk->sk_type;
	e->proto = sk->sk_protocol;
	if (fam == AF_INET) {
		__u32 la = sk->__sk_common.skc_rcv_saddr;
		__u32 ra = sk->__sk_common.skc_daddr;
		__builtin_memcpy(e->laddr, &la, 4);
		__builtin_memcpy(e->raddr, &ra, 4);
	} else if (fam == AF_INET6) {
		bpf_probe_read_kernel(e->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(e->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	if (fam == AF_INET || fam == AF_INET6) {
		e->lport = sk->__sk_common.skc_num;
		__u16 dp = sk->__sk_common.skc_dport;
		e->rport = (dp >> 8) | (dp << 8);
	}
	/* A unix socket: the address as the kernel holds it, not the
	 * caller's memory (which a racing thread can rewrite after the call). */
	if (fam == AF_UNIX) {
		struct sock *peer = KPTR(unix_sock, sk)->peer;
		struct unix_address *ua = NULL;
		if (peer)
			ua = KPTR(unix_sock, peer)->addr;
		else if (own)
			ua = KPTR(unix_sock, sk)->addr;
		if (ua) {
			int n = ua->len;
			if (n > 0 && n <= UNIX_ADDR_MAX) {
				*raw = ua->name;
				*rawlen = n;
			}
		}
	}
	return true;
}

/* in_host_mntns tells whether t is in the host's mount namespace (false
 * when that is not known). */
static __always_inline bool in_host_mntns(struct tl_kf_host *h, struct task_struct *t)
{
	return h->mntns && t->nsproxy->mnt_ns->ns.inum == h->mntns;
}

/* kf_host_drops tells whether the event of type ty of t is dropped: only
 * container rules use the type and t is in the host's mount namespace. */
static __always_inline bool kf_host_drops(struct tl_config *c, __u8 ty, struct task_struct *t)
{
	struct tl_kf_host *h = &c->host;
	if (!(h->types & (1ull << (ty & (TL_NTYPES - 1)))))
		return false;
	return in_host_mntns(h, t);
}

/* kf_port_bits returns the terms port passes: the kf_port_ivs entry
 * holding it, found by binary search. */
static __always_inline __u64 kf_port_bits(struct tl_kf_sock *k, __u16 port)
{
	__u32 lo = 0, hi = k->port_ivs;
	if (hi > TL_KF_PORT_IVS)
		hi = TL_KF_PORT_IVS;
#pragma unroll
	for (int i = 0; i < 11; i++) { /* 2^10 = TL_KF_PORT_IVS */
		if (hi - lo <= 1)
			break;
		__u32 mid = (lo + hi) / 2;
		struct tl_kf_port_iv *v = bpf_map_lookup_elem(&kf_port_ivs, &mid);
		if (!v)
			return ~0ull;
		if (v->lo <= port)
			lo = mid;
		else
			hi = mid;
	}
	struct tl_kf_port_iv *v = bpf_map_lookup_elem(&kf_port_ivs, &lo);
	return v ? v->bits : ~0ull;
}

/* kf_sock_pass applies the rules' socket filter to a connect of t whose
 * socket fields are in e and whose address is raw[0..rawlen): false when
 * no rule can match it. Family, remote address and port are the ones the
 * decoder gives userspace (decodeSock): the socket's, or the caller's
 * address when the socket holds no remote port (a failed connect), and an
 * IPv4-mapped IPv6 address is looked up as IPv4, as userspace unmaps it. */
static __always_inline bool kf_sock_pass(struct tl_config *c, struct tl_event *e, const void *raw, __u32 rawlen, long ret,
					 struct task_struct *t)
{
	__u32 z = 0;
	struct tl_kf_sock *k = bpf_map_lookup_elem(&kf_sock, &z);
	if (!k || !(k->types & (1ull << TL_CONNECT)))
		return true;
	__u8 sa[32] = {}; /* sockaddr_in6 is 28 bytes; the decoder reads 24 */
	if (rawlen > 24)
		rawlen = 24;
	__u32 n = rawlen;
	asm volatile("" : "+r"(n)); /* keep the mask: the verifier needs it */
	if (n >= 2)
		bpf_probe_read_kernel(sa, n & 31, raw);
	__u16 safam = rawlen >= 2 ? *(__u16 *)sa : 0;
	__u16 fam = e->family ? e->family : safam;
	__u32 fc = TL_KF_FAM_OTHER;
	if (fam == AF_UNIX)
		fc = TL_KF_FAM_UNIX;
	else if (fam == AF_INET)
		fc = TL_KF_FAM_INET;
	else if (fam == AF_INET6)
		fc = TL_KF_FAM_INET6;
	__u32 rc = TL_KF_RES_FAILED;
	if (ret >= 0)
		rc = TL_KF_RES_OK;
	else if (ret == -EINPROGRESS)
		rc = TL_KF_RES_INPROGRESS;
	__u64 bits = k->type_terms[TL_CONNECT] & k->fam_terms[fc & 3] & k->res_terms[rc & 3];
	if ((bits & ~k->host_terms) && in_host_mntns(&c->host, t))
		bits &= k->host_terms;
	if (!bits || (fc != TL_KF_FAM_INET && fc != TL_KF_FAM_INET6))
		return bits;

	struct tl_kf_addr key = {};
	__u16 port = e->rport;
	bool v4 = fc == TL_KF_FAM_INET;
	__builtin_memcpy(&key.data[1], e->raddr, 16);
	if (port == 0 && safam == fam && rawlen >= (v4 ? 8 : 24)) {
		port = ((__u16)sa[2] << 8) | sa[3];
		if (v4)
			__builtin_memcpy(&key.data[1], &sa[4], 4);
		else
			__builtin_memcpy(&key.data[1], &sa[8], 16);
	}
	bits &= kf_port_bits(k, port);
	if (!bits)
		return false;
	if (!v4) {
		__u64 hi;
		__u32 mid, lo4;
		__builtin_memcpy(&hi, &key.data[1], 8);
		__builtin_memcpy(&mid, &key.data[9], 4);
		__builtin_memcpy(&lo4, &key.data[13], 4);
		if (hi == 0 && mid == 0xffff0000u) { /* ::ffff:a.b.c.d, little endian */
			v4 = true;
			__builtin_memcpy(&key.data[1], &lo4, 4);
		}
	}
	if (v4) {
		__builtin_memset(&key.data[5], 0, 12);
		key.data[0] = 4;
		key.prefixlen = 8 + 32;
	} else {
		key.data[0] = 6;
		key.prefixlen = 8 + 128;
	}
	/* Each trie only when a term left reads it: a lookup walks its nodes. */
	__u64 *m;
	if (bits & ~k->any_addr) {
		m = bpf_map_lookup_elem(&kf_addrs, &key);
		bits &= k->any_addr | (m ? *m : 0);
		if (!bits)
			return false;
	}
	if (bits & k->notaddr_terms) {
		m = bpf_map_lookup_elem(&kf_notaddrs, &key);
		if (m)
			bits &= ~*m;
	}
	return bits;
}

static __always_inline void connect_exit(struct tl_config *c, struct tl_args *a, long ret, struct task_struct *t)
{
	/* The filter decides on the socket's fields before the record is
	 * stamped and the task identity read: a dropped connect costs those
	 * fields only, and the caller's sockaddr only when the socket does not
	 * hold what the filter reads (not a socket, no remote port). */
	struct tl_event *e = clear_event();
	if (!e)
		return;
	e->res = ret;
	e->sock_fd = a->args[0];
	/* The address: a unix socket's as the kernel holds it (fill_sock),
	 * else the caller's sockaddr; NULL until one is read. */
	const void *raw = NULL;
	__u32 rawlen = 0;
	fill_sock(e, fd_file(t, (int)a->args[0]), false, &raw, &rawlen);
	if (!raw && (!e->family || ((e->family == AF_INET || e->family == AF_INET6) && !e->rport)))
		user_sockaddr(a, &raw, &rawlen);
	if (!kf_sock_pass(c, e, raw, rawlen, ret, t)) {
		kf_count(TL_CONNECT);
		return;
	}
	if (!raw)
		user_sockaddr(a, &raw, &rawlen);
	stamp_event(e, TL_CONNECT);
	fill_task(e, t);
	__u32 off = put_bytes(e, 0, TL_S_RAW, raw, rawlen);
	submit(e, off, c);
}

static __always_inline void exec_failed(struct tl_config *c, struct tl_args *a, long ret, struct task_struct *t)
{
	struct tl_event *e = new_event(a->type);
	if (!e)
		return;
	fill_task(e, t);
	e->res = ret;
	if (a->trunc)
		e->flags |= TL_F_RAW_TRUNC;
	__u32 off = fill_exec(e, 0, c, t, NULL);
	off = put_bytes(e, off, TL_S_RAW, a->buf, a->len);
	off = put_env(e, off, c, t);
	submit(e, off, c);
}

/* ---- other syscalls (types after TL_PROCEXIT) ---------------------------- */

#define A_NONE 7   /* no such argument */
#define A_RES 6    /* the syscall result (an fd) */
#define DIR_CWD 6  /* the path is relative to the working directory */

/* Argument roles of a syscall: which register holds a path (and its dirfd),
 * the fd whose file or socket is reported, a sockaddr and its length. */
struct gen_spec {
	__u8 p0, d0; /* first path (S_RAW, base dir S_PATH); d0 A_NONE: not a path (symlink target) */
	__u8 p1, d1; /* second path (S_RAW2, base dir S_PATH2) */
	__u8 fd;     /* fd reported (S_PATH or the socket fields) */
	__u8 sa, salen;
	__u8 aux;    /* another user string (S_AUX) */
};

static __always_inline struct gen_spec gen_spec(__u8 ty)
{
	struct gen_spec g = {A_NONE, A_NONE, A_NONE, A_NONE, A_NONE, A_NONE, A_NONE, A_NONE};
	switch (ty) {
	case TL_SYMLINK:      /* (target, linkpath) */
		g.p0 = 0; g.p1 = 1; g.d1 = DIR_CWD; break;
	case TL_SYMLINKAT:    /* (target, newdirfd, linkpath) */
		g.p0 = 0; g.p1 = 2; g.d1 = 1; break;
	case TL_LINK:         /* (oldpath, newpath) */
	case TL_RENAME:
		g.p0 = 0; g.d0 = DIR_CWD; g.p1 = 1; g.d1 = DIR_CWD; break;
	case TL_LINKAT:       /* (olddirfd, oldpath, newdirfd, newpath, flags) */
	case TL_RENAMEAT:
	case TL_RENAMEAT2:
		g.p0 = 1; g.d0 = 0; g.p1 = 3; g.d1 = 2; break;
	case TL_UNLINK:       /* (path) */
	case TL_MKDIR:        /* (path, mode) */
	case TL_RMDIR:
	case TL_CHMOD:        /* (path, mode) */
	case TL_UMOUNT2:      /* (target, flags) */
		g.p0 = 0; g.d0 = DIR_CWD; break;
	case TL_UNLINKAT:     /* (dirfd, path, flags) */
	case TL_MKDIRAT:      /* (dirfd, path, mode) */
	case TL_FCHMODAT:     /* (dirfd, path, mode) */
	case TL_FCHMODAT2:    /* (dirfd, path, mode, flags) */
		g.p0 = 1; g.d0 = 0; break;
	case TL_FCHMOD:       /* (fd, mode) */
	case TL_LISTEN:       /* (fd, backlog) */
	case TL_SETNS:        /* (fd, nstype) */
		g.fd = 0; break;
	case TL_SOCKET:
	case TL_ACCEPT:
	case TL_ACCEPT4:
	case TL_DUP:
	case TL_DUP2:
	case TL_DUP3:
	case TL_FCNTL:
		g.fd = A_RES; break;
	case TL_BIND:         /* (fd, addr, addrlen) */
		g.fd = 0; g.sa = 1; g.salen = 2; break;
	case TL_SENDTO:       /* (fd, buf, len, flags, addr, addrlen) */
		g.fd = 0; g.sa = 4; g.salen = 5; break;
	case TL_SENDMSG:      /* (fd, msghdr, flags): msg_name read below */
		g.fd = 0; break;
	case TL_INIT_MODULE:  /* (image, len, uargs) */
		g.p0 = 2; break;
	case TL_FINIT_MODULE: /* (fd, uargs, flags) */
		g.fd = 0; g.p0 = 1; break;
	case TL_MOUNT:        /* (source, target, fstype, flags, data) */
		g.p0 = 0; g.p1 = 1; g.d1 = DIR_CWD; g.aux = 2; break;
	case TL_MEMFD_CREATE: /* (name, flags) */
		g.p0 = 0; break;
	}
	return g;
}

static __always_inline __u64 arg_of(struct tl_args *a, __u8 i)
{
	return i < 6 ? a->args[i] : 0;
}

/* put_ustr appends the NUL-terminated user string at uptr as string idx. */
static __always_inline __u32 put_ustr(struct tl_event *e, __u32 off, int idx, __u64 uptr)
{
	if (off > DATA_OFF_MAX || !uptr)
		return off;
	long n = bpf_probe_read_user_str(&e->data[off & DATA_OFF_MAX], TL_RAW_MAX, (const void *)uptr);
	if (n <= 1)
		return off;
	if (n == TL_RAW_MAX)
		e->flags |= TL_F_RAW_TRUNC;
	__u32 len = (n - 1) & (TL_RAW_MAX - 1);
	e->str[idx & 15].off = off;
	e->str[idx & 15].len = len;
	return off + len;
}

/* What raw_file_name found. */
enum {
	TL_FN_PASS,   /* no name to compare: the event passes */
	TL_FN_LOOKUP, /* the name is in the key */
	TL_FN_NONE,   /* longer than any name compared */
};

/* The last bytes of a path, scanned backwards for its last '/'. */
struct fn_scan {
	char tail[TL_KF_NAME_MAX];
	__u32 end;   /* bytes of tail that are the path's */
	__u32 start; /* where the last component begins */
};

/* fn_step looks at byte end-1-i: a loop callback, verified once (a loop
 * over the bytes made the verifier follow each position out of it). */
static long fn_step(__u64 i, struct fn_scan *x)
{
	if (i >= x->end)
		return 1;
	__u32 j = x->end - 1 - i;
	if (x->tail[j & (TL_KF_NAME_MAX - 1)] != '/')
		return 0;
	x->start = j + 1;
	return 1;
}

/* raw_file_name reads the user path at uptr into a->buf (scratch here:
 * gen_exit copies its paths into the record itself) and puts its last
 * component into key. Resolving leaves that as it is unless it is empty,
 * "." or ".." (TL_FN_PASS, as is a path not read whole: userspace gets
 * what it can read, cut). */
static __always_inline int raw_file_name(struct tl_args *a, __u64 uptr, struct tl_kf_name *key)
{
	a->len = 0;
	a->trunc = 0;
	read_user_path(a, (const void *)uptr);
	__u32 len = a->len;
	if (len == 0 || a->trunc)
		return TL_FN_PASS;
	/* Its last TL_KF_NAME_MAX bytes, or the whole of a shorter one. */
	struct fn_scan x = {.end = len < TL_KF_NAME_MAX ? len : TL_KF_NAME_MAX};
	if (bpf_probe_read_kernel(x.tail, sizeof(x.tail), &a->buf[(len - x.end) & (TL_RAW_MAX - 1)]))
		return TL_FN_PASS;
	bpf_loop(TL_KF_NAME_MAX, fn_step, &x, 0);
	__u32 start = x.start;
	if (start == 0 && len >= TL_KF_NAME_MAX)
		return TL_FN_NONE; /* no '/' in the last 64 bytes: a longer name */
	if (start >= x.end || start >= TL_KF_NAME_MAX)
		return TL_FN_PASS; /* ends in '/' */
	__u32 m = x.end - start;
	if (x.tail[start] == '.' && (m == 1 || (m == 2 && x.tail[(start + 1) & (TL_KF_NAME_MAX - 1)] == '.')))
		return TL_FN_PASS;
	asm volatile("" : "+r"(m)); /* keep the mask: the verifier needs the bound */
	bpf_probe_read_kernel(key->name, m & (TL_KF_NAME_MAX - 1), &x.tail[start]);
	return TL_FN_LOOKUP;
}

/* kf_file_names tells whether the paths of a file change (its first in
 * register p0, its second in p1) that the file-change filter k looks up
 * have a file name that lets it pass. It reads them from user memory
 * before the event is built: a dropped change costs no more. */
static __always_inline bool kf_file_names(struct tl_args *a, struct tl_kfilter *k, __u64 bit, __u32 p0, __u32 p1)
{
	for (int s = 0; s < 2; s++) {
		if (!(k->file_slots[s] & bit))
			continue;
		__u32 p = s ? p1 : p0;
		if (p >= 6)
			return true; /* no such path: nothing to compare */
		struct tl_kf_name key = {};
		int r = raw_file_name(a, a->args[p], &key);
		if (r == TL_FN_PASS)
			return true;
		if (r == TL_FN_LOOKUP) {
			struct tl_kf_fname *v = bpf_map_lookup_elem(&kf_fnames, &key);
			if (v && (v->slots[s] & bit))
				return true;
		}
	}
	return false;
}

/* kf_file_pass applies the rules' file-change filter (rules.FileTerm) to
 * the file change a of the current task, whose paths are in registers p0
 * and p1: 0 when no rule can match it. A global function, verified once
 * on its own (inlined, its branches multiplied the states the verifier
 * follows through gen_exit) and out of the programs' main text, which the
 * hot path of a dropped open runs through. */
__noinline int kf_file_pass(struct tl_args *a, struct tl_config *c, __u32 p0, __u32 p1)
{
	if (!a || !c)
		return 1;
	struct tl_kfilter *k = &c->kf;
	__u32 ty = a->type;
	__u64 bit = 1ull << (ty & (TL_NTYPES - 1));
	if (!(k->file_types & bit))
		return 1;
	if ((k->file_ctr & bit) && !in_host_mntns(&c->host, bpf_get_current_task_btf()))
		return 1;
	if (k->file_flags & bit) {
		struct tl_kf_fflag *f = bpf_map_lookup_elem(&kf_fflags, &ty);
		if (!f || (arg_of(a, f->reg) & f->mask))
			return 1;
	}
	return kf_file_names(a, k, bit, p0, p1);
}

/* put_path appends the raw user path in register p (string raw) and, when
 * it is relative, the directory it is relative to (string base). */
static __always_inline __u32 put_path(struct tl_event *e, __u32 off, struct tl_scratch *s, struct task_struct *t,
				      struct tl_args *a, __u8 p, __u8 d, int raw, int base, __u32 flag)
{
	if (p == A_NONE)
		return off;
	__u32 start = off;
	off = put_ustr(e, off, raw, arg_of(a, p));
	if (off == start || d == A_NONE || e->data[start & DATA_OFF_MAX] == '/')
		return off;
	int dirfd = d == DIR_CWD ? AT_FDCWD : (int)arg_of(a, d);
	return put_base(e, off, base, s, t, dirfd, flag);
}

static __always_inline void gen_exit(struct tl_config *c, struct tl_args *a, long ret, struct task_struct *t)
{
	struct gen_spec g = gen_spec(a->type);
	__u64 sa = arg_of(a, g.sa), salen = arg_of(a, g.salen);
	if (a->type == TL_SENDMSG && a->compat) {
		/* struct compat_msghdr: 32-bit msg_name, msg_namelen. */
		__u32 hdr[2] = {};
		bpf_probe_read_user(hdr, sizeof(hdr), (const void *)a->args[1]);
		sa = hdr[0];
		salen = hdr[1];
	} else if (a->type == TL_SENDMSG) {
		/* struct user_msghdr starts with msg_name, msg_namelen. */
		__u64 hdr[2] = {};
		bpf_probe_read_user(hdr, sizeof(hdr), (const void *)a->args[1]);
		sa = hdr[0];
		salen = (__u32)hdr[1];
	}
	/* Sends are reported for their destination only: a send on a
	 * connected socket (no address) was already seen at connect/accept. */
	if ((a->type == TL_SENDTO || a->type == TL_SENDMSG) && (!sa || !salen))
		return;
	if (!kf_file_pass(a, c, g.p0, g.p1)) {
		kf_count(a->type);
		return;
	}

	struct tl_event *e = new_event(a->type);
	if (!e)
		return;
	struct tl_scratch *s = get_scratch();
	if (!s)
		return;
	fill_task(e, t);
	e->res = ret;
	e->sock_fd = -1;
	e->dirfd = AT_FDCWD;
	for (int i = 0; i < 6; i++)
		e->args[i] = a->args[i];

	__u32 off = 0;
	off = put_path(e, off, s, t, a, g.p0, g.d0, TL_S_RAW, TL_S_PATH, TL_F_PATH_IS_BASE);
	off = put_path(e, off, s, t, a, g.p1, g.d1, TL_S_RAW2, TL_S_PATH2, TL_F_PATH2_IS_BASE);
	if (g.aux != A_NONE)
		off = put_ustr(e, off, TL_S_AUX, arg_of(a, g.aux));

	long fd = -1;
	if (g.fd == A_RES)
		fd = ret;
	else if (g.fd != A_NONE)
		fd = (int)arg_of(a, g.fd);
	const void *raw = NULL;
	__u32 rawlen = 0;
	struct file *f = fd >= 0 ? fd_file(t, fd) : NULL;
	if (f) {
		e->sock_fd = fd;
		bool own = a->type != TL_SENDTO && a->type != TL_SENDMSG;
		if (fill_sock(e, f, own, &raw, &rawlen)) {
			e->flags |= TL_F_FD_SOCK;
		} else if (g.p0 == A_NONE || a->type == TL_FINIT_MODULE) {
			/* the fd's file, unless S_PATH holds the base of a path */
			e->flags |= TL_F_FD_FILE;
			off = put_scratch(e, off, TL_S_PATH, s, walk_path(s, f->f_path.dentry, f->f_path.mnt, &e->flags));
			struct inode *ino = f->f_inode;
			__u32 dev = ino->i_sb->s_dev;
			e->dev = encode_dev(dev >> 20, dev & 0xfffff);
			e->ino = ino->i_ino;
		}
	}
	/* The socket address: the kernel's for a unix socket, else the
	 * caller's (bind's local address, a send's destination). */
	if (raw) {
		off = put_bytes(e, off, TL_S_AUX, raw, rawlen);
	} else if (sa && salen && off <= DATA_OFF_MAX) {
		__u64 n = salen;
		if (n > TL_SOCKADDR_MAX)
			n = TL_SOCKADDR_MAX;
		n &= 2 * TL_SOCKADDR_MAX - 1;
		if (bpf_probe_read_user(&e->data[off & DATA_OFF_MAX], n, (const void *)sa) == 0) {
			e->str[TL_S_AUX].off = off;
			e->str[TL_S_AUX].len = n;
			off += n;
		}
	}
	submit(e, off, c);
}

/* syscall_type maps syscall number k to its tl_type (TL_UNKNOWN if the
 * syscall is not captured). */
static __always_inline __u8 syscall_type(long id, bool compat)
{
	if ((__u64)id >= TL_SYSCALL_TABLE)
		return TL_UNKNOWN;
	__u32 k = compat ? id + TL_SYSCALL_TABLE : id;
	__u8 *typ = bpf_map_lookup_elem(&syscalls, &k);
	return typ ? *typ : TL_UNKNOWN;
}

/* open_drop applies the kernel filter's tests that need no path to an open
 * (its access mode, its outcome, the first bytes of its path's names),
 * from the registers and the file before any argument is copied: most
 * opens end here. True drops the open. *f is the opened file. openat2's
 * flags are in user memory: its opens are judged by open_exit. */
static __always_inline bool open_drop(struct tl_config *c, __u8 ty, struct pt_regs *regs, struct tl_cargs *ca, long ret,
				      struct task_struct *t, struct file **f)
{
	if (ret >= 0)
		*f = fd_file(t, ret);
	if (ty == TL_OPENAT2)
		return false;
	__u32 oflags = 0; /* creat: kf_bit knows its access mode */
	if (ty == TL_OPEN)
		oflags = SYS_ARG(regs, ca, 1);
	else if (ty == TL_OPENAT)
		oflags = SYS_ARG(regs, ca, 2);
	struct tl_kfilter *k = &c->kf;
	return kf_open_drop(k, kf_bit(k, ty, oflags), ty, ret, *f);
}

/* sys_exit handles the exit of a captured syscall of type ty, whichever
 * hook ran it: a native syscall (ca NULL, its arguments in regs) or a
 * 32-bit one (its arguments in ca). */
static __always_inline int sys_exit(struct pt_regs *regs, long ret, __u8 ty, struct tl_cargs *ca)
{
	if (ty == TL_UNKNOWN || ty >= TL_NTYPES || (ty > TL_CONNECT && ty <= TL_PROCEXIT))
		return 0;
	if (is_exec(ty) && ret == 0)
		return 0; /* emitted by sched_process_exec */
	struct tl_config *c = get_config();
	if (!c || !(c->type_mask & (1ull << ty)))
		return 0;
	if (ty == TL_FCNTL) {
		__u64 cmd = SYS_ARG(regs, ca, 1);
		if (cmd != TL_F_DUPFD && cmd != TL_F_DUPFD_CLOEXEC)
			return 0;
	}
	struct task_struct *t = bpf_get_current_task_btf();
	if ((!ca && in_compat_syscall(t, regs)) || !pass_filters(c, t, t->tgid))
		return 0;
	/* A failure no rule can match: it changed nothing the sensor keeps. */
	if (ret < 0 && (c->kf.fail_drop & (1ull << ty))) {
		kf_count(ty);
		return 0;
	}
	struct file *f = NULL;
	if (is_open(ty) && open_drop(c, ty, regs, ca, ret, t, &f))
		return 0;
	/* Before the arguments are read: only container rules use the type. */
	if (!is_exec(ty) && kf_host_drops(c, ty, t)) {
		kf_count(ty);
		return 0;
	}
	struct tl_args *a = read_args(ty, regs, ca);
	if (!a)
		return 0;
	if (is_open(ty))
		open_exit(c, a, ret, t, f);
	else if (ty == TL_CONNECT)
		connect_exit(c, a, ret, t);
	else if (is_exec(ty))
		exec_failed(c, a, ret, t);
	else
		gen_exit(c, a, ret, t);
	return 0;
}

/* The raw hook runs on every syscall of the host; the per-syscall one
 * (attached to syscalls/sys_exit_<name> for each captured syscall) only on
 * the syscalls it is attached to. Userspace loads one of the two. */
SEC("tp_btf/sys_exit")
int tl_sys_exit(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	return sys_exit(regs, ctx[1], syscall_type(SYSCALL_ID(regs), false), NULL);
}

/* The syscalls/sys_exit_* tracepoint record (tracefs format). */
struct tl_tp_sys_exit {
	__u64 common;
	int nr;
	long ret;
};

/* Each link's cookie is the type of the syscall it is attached to: no
 * table lookup (a page the syscall would not touch otherwise). */
SEC("tracepoint/syscalls/sys_exit")
int tl_sys_exit_tp(struct tl_tp_sys_exit *ctx)
{
	__u64 ty = bpf_get_attach_cookie(ctx);
	if (ty >= TL_NTYPES)
		return 0;
	return sys_exit(bpf_task_pt_regs(bpf_get_current_task_btf()), ctx->ret, ty, NULL);
}

#if defined(__TARGET_ARCH_x86)
/* ia32 socketcall(call, args): the calls it multiplexes that are captured,
 * and how many 32-bit arguments each reads from args. */
#define TL_IA32_SOCKETCALL 102
static __always_inline __u8 socketcall_type(__u32 call, __u32 *n)
{
	switch (call) {
	case 1: *n = 3; return TL_SOCKET;
	case 2: *n = 3; return TL_BIND;
	case 3: *n = 3; return TL_CONNECT;
	case 4: *n = 2; return TL_LISTEN;
	case 5: *n = 3; return TL_ACCEPT;
	case 11: *n = 6; return TL_SENDTO;
	case 16: *n = 3; return TL_SENDMSG;
	case 18: *n = 4; return TL_ACCEPT4;
	}
	return TL_UNKNOWN;
}
#endif

/* The 32-bit syscalls, which the per-syscall tracepoints do not report
 * (x86 ignores compat syscalls there) and the raw hook's program leaves:
 * on every syscall, but it returns at once for a native one. Attached with
 * Config.Compat; without it, where the kernel runs ia32 syscalls, any
 * process can hide its opens, connects and file changes behind int $0x80
 * (its execs are still seen by sched_process_exec). */
SEC("tp_btf/sys_exit")
int tl_sys_exit_compat(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	struct task_struct *t = bpf_get_current_task_btf();
	if (!in_compat_syscall(t, regs))
		return 0;
#if defined(__TARGET_ARCH_x86)
	/* ia32: ebx, ecx, edx, esi, edi, ebp; pointers are 32-bit. */
	struct tl_cargs ca = {.a = {(__u32)regs->bx, (__u32)regs->cx, (__u32)regs->dx, (__u32)regs->si,
				    (__u32)regs->di, (__u32)regs->bp}};
	long id = SYSCALL_ID(regs);
	__u8 ty;
	if (id == TL_IA32_SOCKETCALL) {
		__u32 n = 0, v[8] = {};
		ty = socketcall_type(ca.a[0], &n);
		if (ty == TL_UNKNOWN || bpf_probe_read_user(v, (n & 7) * 4, (const void *)ca.a[1]))
			return 0;
		for (int i = 0; i < 6; i++)
			ca.a[i] = v[i];
	} else {
		ty = syscall_type(id, true);
	}
	return sys_exit(regs, ctx[1], ty, &ca);
#else
	return 0; /* arm64: AArch32 tasks are not interpreted yet */
#endif
}


/* ---- scheduler tracepoints -------------------------------------------- */

SEC("tp_btf/sched_process_exec")
int tl_sched_exec(__u64 *ctx)
{
	struct task_struct *p = (void *)ctx[0];
	struct linux_binprm *bprm = (void *)ctx[2];

	/* The saved syscall number reads as execve here even for execveat
	 * (seen on 6.18), and there is no sys_enter state to consult. An
	 * execveat that resolved its file through a dirfd has bprm->fdpath
	 * ("/dev/fd/N[/name]"); one with AT_FDCWD or an absolute path is
	 * indistinguishable from execve and reported as one. */
	__u8 ty = TL_EXECVE;
	if (core_field_exists(bprm->fdpath) && bprm->fdpath)
		ty = TL_EXECVEAT;
	struct tl_config *c = get_config();
	if (!c || !(c->type_mask & (1ull << ty)))
		return 0;
	if (!pass_filters(c, p, p->tgid))
		return 0;
	struct tl_event *e = new_event(ty);
	if (!e)
		return 0;
	fill_task(e, p);
	e->res = 0;
	__u32 off = fill_exec(e, 0, c, p, bprm->file);
	off = put_kstr(e, off, TL_S_RAW, bprm->filename);
	off = put_env(e, off, c, p);
	submit(e, off, c);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int tl_sched_fork(__u64 *ctx)
{
	struct task_struct *parent = (void *)ctx[0];
	struct task_struct *child = (void *)ctx[1];
	if (parent->flags & PF_KTHREAD)
		return 0;
	struct tl_config *c = get_config();
	if (!c)
		return 0;
	__u32 ptgid = parent->tgid;
	__u32 cpid = child->tgid;
	__u32 ctid = child->pid;
	/* Follow new processes of the pid filter before any other filter. */
	if ((c->flags & TL_CFG_PID) && cpid != ptgid &&
	    (ptgid == c->pid || bpf_map_lookup_elem(&tracked, &ptgid))) {
		__u8 one = 1;
		bpf_map_update_elem(&tracked, &cpid, &one, BPF_ANY);
	}
	if (!pass_filters(c, parent, ptgid))
		return 0;

	/* The syscall in progress names the event type. */
	struct task_struct *cur = bpf_get_current_task_btf();
	struct pt_regs *regs = bpf_task_pt_regs(cur);
	bool compat = in_compat_syscall(cur, regs);
#if !defined(__TARGET_ARCH_x86)
	if (compat)
		return 0; /* arm64: AArch32 numbers are not mapped */
#endif
	__u8 ty = syscall_type(SYSCALL_ID(regs), compat);
	if (ty < TL_CLONE || ty > TL_VFORK || !(c->type_mask & (1ull << ty)))
		return 0;

	struct tl_event *e = new_event(ty);
	if (!e)
		return 0;
	fill_task(e, parent);
	e->child_pid = cpid;
	e->child_tid = ctid;
	e->res = ctid;
	if (cpid != ctid)
		e->flags |= TL_F_THREAD;
	/* clone's and clone3's first argument: ebx for an ia32 syscall. */
	__u64 arg0 = ARG0(regs);
#if defined(__TARGET_ARCH_x86)
	if (compat)
		arg0 = (__u32)regs->bx;
#endif
	if (ty == TL_CLONE) {
		e->clone_flags = arg0;
	} else if (ty == TL_CLONE3) {
		__u64 fl = 0;
		bpf_probe_read_user(&fl, sizeof(fl), (void *)arg0);
		e->clone_flags = fl;
	} else if (ty == TL_FORK) {
		e->clone_flags = SIGCHLD;
	} else {
		e->clone_flags = CLONE_VFORK | CLONE_VM | SIGCHLD;
	}
	struct tl_scratch *s = get_scratch();
	__u32 off = 0;
	if (s)
		off = put_cgroup(e, off, s, parent);
	submit(e, off, c);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int tl_sched_exit(__u64 *ctx)
{
	struct task_struct *p = (void *)ctx[0];
	bool group_dead = ctx[1] & 1;
	if (p->flags & PF_KTHREAD)
		return 0;
	__u32 tgid = p->tgid;
	struct tl_config *c = get_config();
	if (!c)
		return 0;
	if (!(c->type_mask & (1ull << TL_PROCEXIT)) || !pass_filters(c, p, tgid))
		goto out;
	struct tl_event *e = new_event(TL_PROCEXIT);
	if (!e)
		goto out;
	fill_task(e, p);
	e->exit_code = p->exit_code;
	e->res = 0;
	if (!group_dead)
		e->flags |= TL_F_THREAD;
	submit(e, 0, c);
out:
	if (group_dead && (c->flags & TL_CFG_PID))
		bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}
