/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Record layout and configuration shared between the BPF programs and the Go
 * decoder (internal/capture/decode.go mirrors the offsets; a Go test checks
 * them against the bpf2go-generated struct). Little-endian on every target.
 * Bump TL_ABI_VERSION on any layout change.
 */
#ifndef TRIPLINE_H
#define TRIPLINE_H

#define TL_ABI_VERSION 8

/* Event types: the order of internal/event.Type. */
enum tl_type {
	TL_UNKNOWN = 0,
	TL_EXECVE,
	TL_EXECVEAT,
	TL_OPEN,
	TL_OPENAT,
	TL_OPENAT2,
	TL_CREAT,
	TL_CONNECT,
	TL_CLONE,
	TL_CLONE3,
	TL_FORK,
	TL_VFORK,
	TL_PROCEXIT,
	/* file system changes: paths in S_PATH/S_RAW and S_PATH2/S_RAW2 */
	TL_SYMLINK,
	TL_SYMLINKAT,
	TL_LINK,
	TL_LINKAT,
	TL_UNLINK,
	TL_UNLINKAT,
	TL_RENAME,
	TL_RENAMEAT,
	TL_RENAMEAT2,
	TL_MKDIR,
	TL_MKDIRAT,
	TL_RMDIR,
	TL_CHMOD,
	TL_FCHMOD,
	TL_FCHMODAT,
	/* sockets: the socket's fields in the connect slots */
	TL_SOCKET,
	TL_BIND,
	TL_LISTEN,
	TL_ACCEPT,
	TL_ACCEPT4,
	TL_SENDTO,
	TL_SENDMSG,
	/* fd duplication: the new fd's file or socket */
	TL_DUP,
	TL_DUP2,
	TL_DUP3,
	TL_FCNTL, /* F_DUPFD / F_DUPFD_CLOEXEC only */
	/* privileges, modules, mounts, namespaces: arguments in args[] */
	TL_PTRACE,
	TL_INIT_MODULE,
	TL_FINIT_MODULE,
	TL_SETUID,
	TL_SETGID,
	TL_SETRESUID,
	TL_SETRESGID,
	TL_MOUNT,
	TL_UMOUNT2,
	TL_MEMFD_CREATE,
	TL_BPF,
	TL_UNSHARE,
	TL_SETNS,
	TL_FCHMODAT2, /* (dirfd, path, mode, flags): Linux 6.6 */
	TL_NTYPES = 64, /* room in per-type counters; type_mask is 64 bits */
};

/* Record flags: the low bits equal internal/event.Flag. */
#define TL_F_ARGV_TRUNC (1u << 0)
#define TL_F_PATH_TRUNC (1u << 1)
#define TL_F_CGROUP_TRUNC (1u << 2)
/* bits 8.. are capture-private */
#define TL_F_EXE_MEMFD (1u << 8)
#define TL_F_EXE_UPPER (1u << 9)
#define TL_F_PATH_IS_BASE (1u << 10) /* failed open: S_PATH is the directory the raw path is relative to */
#define TL_F_THREAD (1u << 11)       /* fork: CLONE_THREAD; exit: only a thread ended */
#define TL_F_RAW_TRUNC (1u << 12)    /* raw user path/sockaddr cut short */
#define TL_F_EXE_WRITABLE (1u << 13) /* the task's fs credentials may write its executable */
#define TL_F_EXE_LOWER (1u << 14)    /* executable on an overlayfs lower layer */
#define TL_F_ENV_TRUNC (1u << 15)    /* environment cut at config.env_max or for lack of room */
#define TL_F_PATH2_IS_BASE (1u << 16) /* S_PATH2 is the directory S_RAW2 is relative to */
#define TL_F_FD_FILE (1u << 17)      /* the event's fd (sock_fd) is a file: its path is S_PATH */
#define TL_F_FD_SOCK (1u << 18)      /* the event's fd (sock_fd) is a socket: family.. raddr */
#define TL_F_IDENT (1u << 19)        /* the record carries the task identity (pid .. comm) */

/* String slots: (offset, length) into data[]. */
enum tl_str_idx {
	TL_S_EXE = 0,   /* executable path (dentry walk) */
	TL_S_CWD,       /* working directory (dentry walk) */
	TL_S_ARGV,      /* NUL-separated argv from mm->arg_start..arg_end */
	TL_S_CGROUP,    /* cgroup path: v2 default hierarchy, or v1 memory controller when v2 is "/" */
	TL_S_PATH,      /* open: resolved path of the new fd (or base dir on failure) */
	TL_S_RAW,       /* open: raw user path; exec: filename passed; connect: raw sockaddr bytes */
	TL_S_ENV,       /* exec: NUL-separated environment from mm->env_start..env_end */
	TL_S_PATH2,     /* second path: directory S_RAW2 is relative to (TL_F_PATH2_IS_BASE) */
	TL_S_RAW2,      /* second raw user path (rename/link newpath, symlink linkpath, mount dir) */
	TL_S_AUX,       /* mount: filesystem type */
	TL_NSTR = 10,   /* keeps the header 8-byte aligned */
};

struct tl_str {
	__u16 off;
	__u16 len;
};

/* Sizes of the kernel-side buffers. */
#define TL_PATH_MAX 4096      /* one dentry-walk path */
#define TL_ARGV_HARD_MAX 8192 /* upper bound of config.argv_max */
#define TL_ENV_HARD_MAX 8192  /* upper bound of config.env_max */
#define TL_RAW_MAX 1024       /* raw user path copied at sys_exit */
#define TL_SOCKADDR_MAX 128   /* sizeof(struct sockaddr_storage) */
#define TL_DATA_SIZE 24576

/*
 * The record is built in a per-CPU struct tl_event and written to the ring
 * in sections, in this order: the header (ts .. str), the identity (pid ..
 * comm) when TL_F_IDENT is set, the type's section (see below), then
 * data_len bytes of data. The identity is sent once per task and change:
 * a record without it names the identity sent earlier by (tid, gen), which
 * userspace caches (see submit in tripline.bpf.c).
 */
struct tl_event {
	/* header: every record */
	__u64 ts;    /* bpf_ktime_get_boot_ns */
	__s64 res;   /* syscall result */
	__u8 type;   /* enum tl_type */
	__u8 abi;    /* TL_ABI_VERSION */
	__u16 data_len;
	__u32 flags; /* TL_F_* */
	__u32 cpu;
	__u32 tid;
	__u32 gen;   /* identity generation: unique per identity sent; 0 = not cached */
	__u32 epoch; /* config.epoch the identity was sent in */
	struct tl_str str[TL_NSTR];
	/* identity: only with TL_F_IDENT */
	__u32 pid, ppid, vpid, vtid, sid;
	__u32 uid, gid, euid, egid, loginuid, tty;
	__u32 _pad0;
	__u64 cap_eff, cap_perm, cap_inh;
	__u64 pidns, mntns, cgroup_id, start_time; /* start_time: boot ns */
	char comm[16];
	/* fork / exit section */
	__u32 child_pid;
	__u32 child_tid;
	__u64 clone_flags;
	__s32 exit_code; /* raw wait status */
	__u32 _pad2;
	/* open section */
	__s32 dirfd;
	__u32 oflags;
	__u32 mode;
	__u32 dev;
	__u64 ino;
	__u64 resolve;
	/* connect section */
	__s32 sock_fd;
	__u16 family;
	__u16 sock_type;
	__u16 proto;
	__u16 lport; /* host order */
	__u16 rport; /* host order, from the socket (0 if unknown) */
	__u16 _pad1;
	__u8 laddr[16];
	__u8 raddr[16];
	/* the syscall's argument registers (types after TL_PROCEXIT) */
	__u64 args[6];
	char data[TL_DATA_SIZE];
};

/* Sections on the wire (offsets in struct tl_event). The type's section:
 * exec none; open TL_SEC_OPEN; connect TL_SEC_CONNECT; fork and exit
 * TL_SEC_FORK; the types after TL_PROCEXIT TL_SEC_SYS (open, connect and
 * args). */
#define TL_OFF(f) __builtin_offsetof(struct tl_event, f)
#define TL_WIRE_HDR TL_OFF(pid)
#define TL_IDENT_SIZE (TL_OFF(child_pid) - TL_OFF(pid))
#define TL_SEC_FORK TL_OFF(child_pid)
#define TL_SEC_FORK_SIZE (TL_OFF(dirfd) - TL_OFF(child_pid))
#define TL_SEC_OPEN TL_OFF(dirfd)
#define TL_SEC_OPEN_SIZE (TL_OFF(sock_fd) - TL_OFF(dirfd))
#define TL_SEC_CONNECT TL_OFF(sock_fd)
#define TL_SEC_CONNECT_SIZE (TL_OFF(args) - TL_OFF(sock_fd))
#define TL_SEC_SYS TL_OFF(dirfd)
#define TL_SEC_SYS_SIZE (TL_OFF(data) - TL_OFF(dirfd))

/* The identity last sent for a task (task storage). */
struct tl_ident_cache {
	__u32 gen;   /* 0: none sent */
	__u32 epoch;
	__u32 tid;
	__u32 _pad;
	__u64 ident[15]; /* pid .. comm */
};
_Static_assert(TL_IDENT_SIZE == sizeof(((struct tl_ident_cache *)0)->ident), "identity size");
_Static_assert(TL_WIRE_HDR % 8 == 0, "identity alignment");

/* Size of the build buffer's fixed part. */
#define TL_HDR_SIZE (sizeof(struct tl_event) - TL_DATA_SIZE)

#define TL_CFG_PID (1u << 0)  /* only config.pid and its descendants */
#define TL_CFG_COMM (1u << 1) /* only tasks whose comm is config.comm */


/* Per-CPU counters. */
struct tl_stats {
	__u64 seen;      /* records that passed the filters */
	__u64 delivered; /* written to the ring */
	__u64 lost;      /* ring full */
	__u64 truncated; /* delivered with a *_TRUNC flag */
	__u64 unwoken;   /* bytes written since this CPU last woke the reader */
	__u64 seen_type[TL_NTYPES];
	__u64 lost_type[TL_NTYPES];
	__u64 filtered;  /* dropped by the rules' kernel filter */
	__u64 filtered_type[TL_NTYPES];
	__u64 filtered_early; /* of filtered: opens dropped before their path was built */
};

/* Kernel filter derived from the rules (internal/rules.KernelFilter): an
 * open of a filtered type is sent only when a rule could match it. Bits are
 * TL_KF_BIT(type, access class); a path prefix or file name entry holds the
 * bits it lets pass. */
enum tl_kf_access {
	TL_ACC_RO = 0, /* O_RDONLY */
	TL_ACC_WO,     /* O_WRONLY, creat */
	TL_ACC_RW,     /* O_RDWR (and access mode 3) */
};
#define TL_KF_BIT(ty, acc) (1ull << ((((ty) & 15) * 4) + (acc))) /* 16 types of 4 bits: kfBit in Go */
#define TL_KF_PREFIX_MAX 128 /* bytes of the path compared with the prefixes */
#define TL_KF_NAME_MAX 64    /* file names up to 63 bytes */
#define TL_KF_SCAN_MAX 256   /* longer paths pass a 'contains' test */
#define TL_KF_ENTRIES 4096
#define TL_KF_ERRNO_MAX 64   /* failed opens' errnos below it are filtered */

struct tl_kfilter {
	__u64 types;     /* bit per tl_type: types filtered */
	__u64 fail_pass; /* failed opens that pass, whatever their errno */
	__u64 any_path;  /* successful opens that pass whatever their path */
	__u64 contains;  /* successful opens worth scanning for kf_contains */
	__u64 path_bits; /* successful opens some prefix, text or name may let pass */
	__u64 contains_first[4]; /* bitmap: bytes that follow the '/' of a kf_contains text */
	/* Necessary conditions checked before the map lookups (a dropped open
	 * usually fails them): */
	__u64 name_lens;        /* bit n: a kf_names entry is n bytes long */
	__u64 name_first[4];    /* bitmap: first bytes of the kf_names entries */
	__u64 prefix_first[256]; /* [b]: bits of the kf_prefixes entries that start with '/', b */
	__u64 fail_errno[TL_KF_ERRNO_MAX]; /* [e]: failed opens that pass with errno e */
	__u64 fail_drop; /* bit per tl_type: its failed syscalls are dropped */
	/* File changes (kf_file_pass), bit per tl_type: */
	__u64 file_types;    /* filtered */
	__u64 file_ctr;      /* pass outside the host's mount namespace */
	__u64 file_flags;    /* pass with a bit of kf_fflags[type] */
	__u64 file_slots[2]; /* the file name of path 1, 2 is looked up */
};

/* kf_fflags value: the bits of argument register reg that let a file
 * change pass. */
struct tl_kf_fflag {
	__u64 mask;
	__u32 reg;
	__u32 pad;
};

/* kf_fnames value: bit per tl_type whose path 1, 2 may have the name. */
struct tl_kf_fname {
	__u64 slots[2];
};

/* Types only container rules use: their events from processes in the
 * host's mount namespace are dropped (never exec, fork or exit). */
struct tl_kf_host {
	__u64 mntns; /* inode number of the host's mount namespace; 0: off */
	__u64 types; /* bit per tl_type */
};

struct tl_config {
	__u32 flags;        /* TL_CFG_* */
	__u32 pid;          /* tgid filter */
	__u32 self_tgid;    /* the sensor: its own events are dropped (0 = keep) */
	__u32 argv_max;     /* argv bytes captured, <= TL_ARGV_HARD_MAX */
	__u64 wakeup_bytes; /* a CPU wakes the reader after writing this much */
	__u64 type_mask;    /* bit per tl_type: enabled types (sched hooks) */
	char comm[16];
	__u32 env_max;      /* environment bytes captured, < TL_ENV_HARD_MAX; 0: none */
	__u32 epoch;        /* bumped by userspace to have every task resend its identity */
	/* The rules' kernel filter for opens and for host processes: in the
	 * config's page, which every hooked syscall reads first (a TLB miss
	 * per syscall on kernels that flush the TLB on each entry). */
	struct tl_kf_host host;
	struct tl_kfilter kf;
};

struct tl_kf_prefix { /* LPM trie key: the resolved path (or its tail) */
	__u32 prefixlen;  /* bits */
	__u8 data[TL_KF_PREFIX_MAX];
};

struct tl_kf_name { /* hash key: the last path component, NUL-padded */
	char name[TL_KF_NAME_MAX];
};

/* Socket filter derived from the rules (internal/rules.SockFilter): a
 * connect of a filtered type is sent when one term, a bit of these masks,
 * lets it pass: its family, outcome and (host processes) term masks, and
 * for IPv4/IPv6 the masks its remote port and address look up. */
enum tl_kf_fam {
	TL_KF_FAM_OTHER = 0, /* or none */
	TL_KF_FAM_UNIX,
	TL_KF_FAM_INET,
	TL_KF_FAM_INET6,
};
enum tl_kf_res {
	TL_KF_RES_OK = 0,     /* res >= 0 */
	TL_KF_RES_INPROGRESS, /* -EINPROGRESS */
	TL_KF_RES_FAILED,     /* any other failure */
};
#define TL_KF_PORT_IVS 1024 /* port intervals */

struct tl_kf_sock {
	__u64 types;                 /* bit per tl_type: socket types filtered */
	__u64 type_terms[TL_NTYPES]; /* the terms of each type */
	__u64 fam_terms[4];          /* terms a family passes (enum tl_kf_fam) */
	__u64 res_terms[4];          /* terms an outcome passes (enum tl_kf_res) */
	__u64 host_terms;            /* terms a process in the host's mount namespace passes */
	__u64 any_addr;              /* terms without an address set (kf_addrs) */
	__u64 notaddr_terms;         /* terms with addresses they exclude (kf_notaddrs) */
	__u32 port_ivs;              /* entries of kf_port_ivs, >= 1 */
	__u32 _pad;
};

/* kf_port_ivs[i]: the terms ports lo.. (up to the next entry's lo) pass;
 * sorted, entry 0 has lo 0. */
struct tl_kf_port_iv {
	__u32 lo;
	__u32 _pad;
	__u64 bits;
};

struct tl_kf_addr { /* LPM trie key: family byte (4 or 6) then the address */
	__u32 prefixlen; /* bits: 8 + the prefix length */
	__u8 data[20];
};

/* The arguments of the syscall being reported, gathered at sys_exit. */
struct tl_args {
	__u16 len;  /* bytes in buf (string length without NUL, or sockaddr length) */
	__u8 type;  /* tl_type */
	__u8 trunc; /* buf was cut short */
	__u8 compat; /* a 32-bit syscall: its pointers are 32-bit */
	__u64 args[6];
	char buf[TL_RAW_MAX];
};

/* Falco-visible constants the sys_exit filter needs. */
#define TL_F_DUPFD 0
#define TL_F_DUPFD_CLOEXEC 1030

#define TL_SYSCALL_TABLE 512

#endif /* TRIPLINE_H */
