// SPDX-License-Identifier: Apache-2.0
/*
 * File opens (open, openat, openat2, creat, open_by_handle_at), exec and
 * process exit, with in-kernel filters, dedup and exact counters.
 *
 * Attach: the generic sys_exit tracepoint through tp_btf (or raw_tp where
 * tp_btf is missing). Neither needs tracefs, which a fresh boot may not
 * mount; per-syscall classic tracepoints would, and cost more (the kernel
 * builds a perf record before running the program). The record is built at
 * exit, when the result is known and getname() has faulted the path in; the
 * arguments come from the saved registers (read_open_args).
 * Programs whose section starts with '?' are not loaded unless user space
 * turns them on (src/probeset.ts picks one variant per probe).
 */
#include "fileexec.h"
#include "cgroup_track.h"

char LICENSE[] SEC("license") = "GPL";

/* State of one path walk (walk_path): in the scratch map, where the step function finds it. */
struct walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_d;
	struct vfsmount *root_m;
	__u32 pos;
	__u8 done;
	__u8 truncated;
};

struct fe_scratch {
	struct fe_file_open_event open;
	struct fe_exec_event exec;
	char walk[FE_PATH_MAX + 256];
	struct stella_prefix_key prefix;
	struct walk_ctx wc;
	/* Unused: exit records are reserved in the ring directly. Listed so the
	 * type is in the object's BTF, where test/btf-layout.test.ts checks it. */
	struct fe_exit_event exit_btf_anchor;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fe_scratch);
} fe_scratch SEC(".maps");



static __always_inline struct fe_scratch *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&fe_scratch, &zero);
}

/* ---- hashing: FNV-1a style over 8-byte words, tail masked ---- */

static __always_inline __u64 hash_bytes(const char *buf, __u32 len)
{
	__u64 h = STELLA_FNV_OFFSET ^ len;
	__u32 words = (len + 7) / 8;
	for (__u32 i = 0; i < FE_PATH_MAX * 2 / 8; i++) {
		if (i >= words)
			break;
		__u64 w = *(const __u64 *)&buf[(i * 8) & (FE_PATH_MAX * 2 - 8)];
		__u32 left = len - i * 8;
		if (left < 8)
			w &= (1ULL << (left * 8)) - 1; /* bytes past the end are stale */
		h = (h ^ w) * STELLA_FNV_PRIME;
		h ^= h >> 29;
	}
	return h;
}

/* ---- path resolution ---- */

/*
 * Write the path of (dentry, vfsmnt) as seen from the task's root into the
 * end of s->walk, right-aligned at FE_PATH_MAX. Returns the start offset;
 * the path is walk[start, FE_PATH_MAX) ("" for the root itself).
 *
 * One component per call of fe_walk_step, a global (non-inlined) function:
 * the verifier checks a global function once, on its own, instead of once
 * per loop iteration and branch, so a plain bounded loop of FE_MAX_DEPTH
 * steps stays far below its budget on every kernel. bpf_loop (5.17) is not
 * needed: kernels 5.6+ have global functions and bounded loops (5.3). A
 * global function on those kernels takes no pointer arguments (5.12 added
 * them), so the walk state lives in the per-CPU scratch entry.
 */
__noinline int fe_walk_step(void)
{
	struct fe_scratch *s = scratch();
	if (!s)
		return 1;
	struct walk_ctx *c = &s->wc;
	struct dentry *dentry = c->dentry;
	struct vfsmount *vfsmnt = c->vfsmnt;
	if (dentry == c->root_d && vfsmnt == c->root_m) {
		c->done = 1;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt = c->mnt;
		struct mount *mparent = BPF_CORE_READ(mnt, mnt_parent);
		if (mparent == mnt || !mparent) {
			c->done = 1; /* root of the mount namespace */
			return 1;
		}
		c->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		c->mnt = mparent;
		c->vfsmnt = (struct vfsmount *)((char *)mparent + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	__u32 len = BPF_CORE_READ(dentry, d_name.len);
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	if (len > 255)
		len = 255; /* NAME_MAX */
	__u32 pos = c->pos;
	if (len + 1 >= pos) {
		c->truncated = 1;
		c->done = 1;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&s->walk[pos & (FE_PATH_MAX - 1)], len & 255, name);
	pos -= 1;
	s->walk[pos & (FE_PATH_MAX - 1)] = '/';
	c->pos = pos;
	c->dentry = parent;
	return 0;
}

static __always_inline __u32 walk_path(struct fe_scratch *s, struct dentry *dentry, struct vfsmount *vfsmnt,
				       __u8 *pflags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct walk_ctx *c = &s->wc;
	c->dentry = dentry;
	c->vfsmnt = vfsmnt;
	c->mnt = real_mount(vfsmnt);
	c->root_d = BPF_CORE_READ(task, fs, root.dentry);
	c->root_m = BPF_CORE_READ(task, fs, root.mnt);
	c->pos = FE_PATH_MAX;
	c->done = 0;
	c->truncated = 0;
	for (int i = 0; i < FE_MAX_DEPTH; i++) {
		if (fe_walk_step())
			break;
	}
	if (!c->done || c->truncated)
		*pflags |= FE_PATH_TRUNCATED;
	return c->pos;
}

/* The struct file open on fd in the current task, or NULL. */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* ---- file open ---- */

/*
 * The open's arguments, read at sys_exit from the saved user registers: the
 * kernel does not write the argument registers of a syscall back (x86_64:
 * di/si/dx/r10; arm64 keeps the first in orig_x0, compat.h), so no sys_enter
 * program and no per-thread state are needed. Measured: a sys_enter program
 * that stashes the arguments costs ~6% of an open+close loop (see
 * docs/performance.md). A ptrace/seccomp rewrite of the arguments at entry
 * is seen here as executed, not as first requested.
 */
static __always_inline bool read_open_args(struct pt_regs *regs, long id, const bool direct,
					   struct fe_open_args *a)
{
	if (id == NR_openat) {
		a->syscall = FE_SYS_OPENAT;
		a->dirfd = (int)SYSCALL_ARG1_REG(regs, direct);
		a->path_ptr = SYSCALL_ARG2_REG(regs, direct);
		a->flags = (__u32)SYSCALL_ARG3_REG(regs, direct);
		a->mode = (__u32)SYSCALL_ARG4_REG(regs, direct);
	} else if (id == NR_open) {
		a->syscall = FE_SYS_OPEN;
		a->dirfd = FE_AT_FDCWD;
		a->path_ptr = SYSCALL_ARG1_REG(regs, direct);
		a->flags = (__u32)SYSCALL_ARG2_REG(regs, direct);
		a->mode = (__u32)SYSCALL_ARG3_REG(regs, direct);
	} else if (id == NR_openat2) {
		struct open_how how = {};
		a->syscall = FE_SYS_OPENAT2;
		a->dirfd = (int)SYSCALL_ARG1_REG(regs, direct);
		a->path_ptr = SYSCALL_ARG2_REG(regs, direct);
		bpf_probe_read_user(&how, sizeof(how), (void *)SYSCALL_ARG3_REG(regs, direct));
		a->flags = how.flags;
		a->mode = (__u32)how.mode;
	} else if (id == NR_creat) {
		a->syscall = FE_SYS_CREAT;
		a->dirfd = FE_AT_FDCWD;
		a->path_ptr = SYSCALL_ARG1_REG(regs, direct);
		a->flags = 0100 | 01 | 01000; /* O_CREAT|O_WRONLY|O_TRUNC, fs/open.c */
		a->mode = (__u32)SYSCALL_ARG2_REG(regs, direct);
	} else if (id == NR_open_by_handle_at) {
		a->syscall = FE_SYS_OPEN_BY_HANDLE_AT;
		a->dirfd = (int)SYSCALL_ARG1_REG(regs, direct); /* mount_fd */
		a->path_ptr = 0;
		a->flags = (__u32)SYSCALL_ARG3_REG(regs, direct);
	} else {
		return false;
	}
	return true;
}

/*
 * The current task is runc setting a container up: one of its set-up stages
 * (runc:[0:PARENT], runc:[1:CHILD], runc:[2:INIT]), or `runc` itself (its
 * init before nsexec renames it, whose loader opens runc's host libraries).
 */
static __always_inline __u32 fe_setup_class(void)
{
	char comm[16] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != 'r' || comm[1] != 'u' || comm[2] != 'n' || comm[3] != 'c')
		return 0;
	return (comm[4] == 0 || (comm[4] == ':' && comm[5] == '[')) ? FE_FCLASS_RUNTIME_SETUP : 0;
}

static __always_inline int on_sys_exit(struct pt_regs *regs, long ret, const bool direct)
{
	long id = SYSCALL_NR_REG(regs, direct);
	if (id != NR_openat && id != NR_open && id != NR_openat2 && id != NR_creat &&
	    id != NR_open_by_handle_at)
		return 0;
	stella_seen(FE_PROBE_FILE_OPEN);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (stella_task_filtered(pid_tgid >> 32, bpf_get_current_cgroup_id())) {
		stella_count(FE_PROBE_FILE_OPEN, STELLA_C_FILTERED);
		return 0;
	}
	struct fe_open_args a = {};
	read_open_args(regs, id, direct, &a);

	struct fe_scratch *s = scratch();
	if (!s) {
		stella_count(FE_PROBE_FILE_OPEN, STELLA_C_LOST);
		return 0;
	}
	struct fe_file_open_event *ev = &s->open;
	__u64 now = bpf_ktime_get_ns();
	__u64 cg = bpf_get_current_cgroup_id();
	ev->ret = (__s32)ret;
	ev->flags = (__u32)a.flags;
	ev->mode = a.mode;
	ev->dirfd = a.dirfd;
	ev->syscall = a.syscall;
	ev->path_flags = 0;
	ev->resolution = FE_RES_ABSOLUTE;

	__u32 len = 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *basefile = NULL;
	long n = 0;

	if (a.syscall == FE_SYS_OPEN_BY_HANDLE_AT) {
		ev->resolution = FE_RES_UNRESOLVED;
		if (ret >= 0) {
			basefile = fd_file((int)ret);
			if (basefile)
				ev->resolution = FE_RES_FD;
		}
	} else {
		n = bpf_probe_read_user_str(ev->path, FE_PATH_MAX + 1, (void *)a.path_ptr);
		if (n <= 0) {
			ev->path_flags |= FE_PATH_FAULT;
			len = 0;
		} else if (ev->path[0] != '/') {
			if (a.dirfd == FE_AT_FDCWD) {
				ev->resolution = FE_RES_CWD;
			} else {
				basefile = fd_file(a.dirfd);
				ev->resolution = basefile ? FE_RES_DIRFD : FE_RES_UNRESOLVED;
			}
		}
		if (n > 0)
			len = n - 1;
		if (n > FE_PATH_MAX) {
			ev->path_flags |= FE_PATH_TRUNCATED;
			len = FE_PATH_MAX;
		}
	}

	if (ev->resolution == FE_RES_CWD || ev->resolution == FE_RES_DIRFD ||
	    ev->resolution == FE_RES_FD) {
		struct dentry *d;
		struct vfsmount *m;
		if (ev->resolution == FE_RES_CWD) {
			d = BPF_CORE_READ(task, fs, pwd.dentry);
			m = BPF_CORE_READ(task, fs, pwd.mnt);
		} else {
			d = BPF_CORE_READ(basefile, f_path.dentry);
			m = BPF_CORE_READ(basefile, f_path.mnt);
		}
		__u32 pos = walk_path(s, d, m, &ev->path_flags);
		__u32 plen = FE_PATH_MAX - pos;
		if (plen > FE_PATH_MAX - 1)
			plen = FE_PATH_MAX - 1;
		STELLA_OPAQUE(plen);
		plen &= FE_PATH_MAX - 1;
		STELLA_OPAQUE(pos);
		pos &= FE_PATH_MAX - 1;
		if (ev->resolution == FE_RES_FD) {
			/* The file's own path: no user string to append. */
			if (plen == 0) {
				ev->path[0] = '/';
				len = 1;
			} else {
				bpf_probe_read_kernel(ev->path, plen, &s->walk[pos]);
				len = plen;
			}
		} else {
			bpf_probe_read_kernel(ev->path, plen, &s->walk[pos]);
			ev->path[plen & (FE_PATH_MAX - 1)] = '/';
			__u64 off = (plen & (FE_PATH_MAX - 1)) + 1; /* <= FE_PATH_MAX, so the read fits path[] */
			n = bpf_probe_read_user_str(&ev->path[off], FE_PATH_MAX + 1, (void *)a.path_ptr);
			if (n <= 0) {
				ev->path_flags |= FE_PATH_FAULT;
				len = off;
			} else {
				len = off + n - 1;
				if (n > FE_PATH_MAX) {
					ev->path_flags |= FE_PATH_TRUNCATED;
					len = off + FE_PATH_MAX;
				}
			}
		}
	}
	if (len > FE_PATH_MAX * 2 - 1)
		len = FE_PATH_MAX * 2 - 1;
	ev->path_len = len;

	if (stella_path_filtered(ev->path, len, &s->prefix)) {
		stella_count(FE_PROBE_FILE_OPEN, STELLA_C_FILTERED);
		return 0;
	}

	struct stella_dedup_key key = {
		.cgroup_id = cg,
		.kind = STELLA_KIND_FILE_OPEN,
		.fclass = (a.flags & 3) | ((a.flags & 0100) ? FE_FCLASS_CREAT : 0) |
			  ((a.flags & 01000) ? FE_FCLASS_TRUNC : 0) | (ret < 0 ? FE_FCLASS_FAILED : 0),
	};
	if (cfg_dedup) {
		key.fclass |= fe_setup_class();
		key.hash = hash_bytes(ev->path, len);
		if (stella_dedup_seen(&key, now)) {
			stella_count(FE_PROBE_FILE_OPEN, STELLA_C_DEDUPLICATED);
			return 0;
		}
	}
	/* The header last: a filtered or duplicate open does not pay for it. */
	stella_fill_header(&ev->hdr, STELLA_KIND_FILE_OPEN, pid_tgid, cg, now);
	__u64 size = offsetof(struct fe_file_open_event, path) + (len & (FE_PATH_MAX * 2 - 1));
	if (stella_output(FE_PROBE_FILE_OPEN, ev, size) != 0)
		stella_dedup_forget(&key);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(fe_exit_btf, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs, ret, true);
}

SEC("?raw_tp/sys_exit")
int BPF_PROG(fe_exit_raw, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs, ret, false);
}

/* ---- exec ---- */

static __always_inline __u64 encode_dev(__u32 kdev)
{
	/* Kernel dev_t (major << 20 | minor) to stat(2) st_dev: new_encode_dev(), include/linux/kdev_t.h. */
	__u32 major = kdev >> 20, minor = kdev & ((1U << 20) - 1);
	return (minor & 0xff) | (major << 8) | ((__u64)(minor & ~0xffU) << 12);
}

static __always_inline int on_exec(struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	stella_seen(FE_PROBE_EXEC);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 cg = bpf_get_current_cgroup_id();
	if (stella_task_filtered(pid_tgid >> 32, cg)) {
		stella_count(FE_PROBE_EXEC, STELLA_C_FILTERED);
		return 0;
	}
	struct fe_scratch *s = scratch();
	if (!s) {
		stella_count(FE_PROBE_EXEC, STELLA_C_LOST);
		return 0;
	}
	struct fe_exec_event *ev = &s->exec;
	__u64 now = bpf_ktime_get_ns();
	stella_fill_header(&ev->hdr, STELLA_KIND_EXEC, pid_tgid, cg, now);
	ev->old_pid = old_pid;
	ev->exec_flags = 0;
	ev->argc = BPF_CORE_READ(bprm, argc);
	struct file *f = BPF_CORE_READ(bprm, file);
	ev->exe_ino = BPF_CORE_READ(f, f_inode, i_ino);
	ev->exe_dev = encode_dev(BPF_CORE_READ(f, f_inode, i_sb, s_dev));

	const char *fn = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(ev->data, FE_PATH_MAX, fn);
	__u32 flen = n > 0 ? n - 1 : 0;
	if (n >= FE_PATH_MAX)
		ev->exec_flags |= FE_EXEC_FILENAME_TRUNCATED;
	flen &= FE_PATH_MAX - 1;
	ev->filename_len = flen;

	/* The new image's argument block, laid out by the kernel just before this tracepoint. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	__u64 as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	__u64 alen = ae > as ? ae - as : 0;
	if (alen > FE_ARGV_MAX) {
		alen = FE_ARGV_MAX;
		ev->exec_flags |= FE_EXEC_ARGV_TRUNCATED;
	}
	if (alen && bpf_probe_read_user(&ev->data[flen], alen, (void *)as) != 0) {
		alen = 0;
		ev->exec_flags |= FE_EXEC_ARGV_TRUNCATED;
	}
	ev->argv_len = alen;

	/*
	 * Fact: this cgroup ran this image with these arguments. The key covers
	 * the filename, the argv bytes kept (and argc, for what is cut off) and
	 * the executable's inode: another run with other arguments, or a
	 * multi-call binary (busybox via /proc/self/exe) under another argv[0],
	 * is a new fact.
	 */
	struct stella_dedup_key key = { .cgroup_id = cg, .kind = STELLA_KIND_EXEC, .fclass = flen };
	if (cfg_dedup) {
		__u64 h = hash_bytes(ev->data, flen + alen);
		h = (h ^ ev->argc) * STELLA_FNV_PRIME;
		h = (h ^ ev->exe_ino) * STELLA_FNV_PRIME;
		key.hash = (h ^ ev->exe_dev) * STELLA_FNV_PRIME;
		if (stella_dedup_seen(&key, now)) {
			stella_count(FE_PROBE_EXEC, STELLA_C_DEDUPLICATED);
			return 0;
		}
	}
	/*
	 * The file the process runs, as the process sees it: bprm->file's path
	 * from the task's root (the container's, after runc's pivot_root), by the
	 * same walk as file opens; after dedup, which does not need it, so a
	 * folded exec does not pay for the walk. Not `filename`: a multi-call binary started
	 * through /proc/self/exe, a symlink or a relative name resolves to the
	 * real file. For a `#!` script bprm->file is the interpreter the kernel
	 * opened (fs/exec.c exec_binprm swaps it in), and bprm->interp names it
	 * as the script's first line did; for other files interp is filename
	 * itself (alloc_bprm), so a different pointer means an interpreter.
	 */
	__u8 wflags = 0;
	__u32 pos = walk_path(s, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), &wflags);
	if (wflags & FE_PATH_TRUNCATED)
		ev->exec_flags |= FE_EXEC_EXE_PATH_TRUNCATED;
	__u32 plen = FE_PATH_MAX - pos;
	if (plen > FE_PATH_MAX - 1)
		plen = FE_PATH_MAX - 1;
	STELLA_OPAQUE(plen);
	plen &= FE_PATH_MAX - 1;
	STELLA_OPAQUE(pos);
	pos &= FE_PATH_MAX - 1;
	__u32 off = (flen + alen) & (2 * FE_PATH_MAX - 1); /* flen < 4096, alen <= 4096 */
	if (plen == 0) {
		ev->data[off] = '/';
		plen = 1;
	} else {
		bpf_probe_read_kernel(&ev->data[off], plen, &s->walk[pos]);
	}
	ev->exe_path_len = plen;
	ev->interp_len = 0;
	const char *interp = BPF_CORE_READ(bprm, interp);
	if (interp && interp != fn) {
		__u32 ioff = (off + plen) & (4 * FE_PATH_MAX - 1); /* < 3 * FE_PATH_MAX: room for FE_PATH_MAX */
		if (ioff <= 3 * FE_PATH_MAX) {
			n = bpf_probe_read_kernel_str(&ev->data[ioff], FE_PATH_MAX, interp);
			if (n > 0) {
				ev->exec_flags |= FE_EXEC_INTERP;
				ev->interp_len = (n - 1) & (FE_PATH_MAX - 1);
				if (n >= FE_PATH_MAX)
					ev->exec_flags |= FE_EXEC_INTERP_TRUNCATED;
			}
		}
	}

	__u64 size = offsetof(struct fe_exec_event, data) + flen + alen + ev->exe_path_len + ev->interp_len;
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	if (stella_output(FE_PROBE_EXEC, ev, size) != 0)
		stella_dedup_forget(&key);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(fe_exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(p, old_pid, bprm);
}

SEC("?raw_tp/sched_process_exec")
int BPF_PROG(fe_exec_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(p, old_pid, bprm);
}

/* ---- exit ---- */

static __always_inline int on_exit(struct task_struct *p)
{
	/* Only the exit of the last thread is a process exit (signal->live hit 0 in do_exit). */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	stella_seen(FE_PROBE_EXIT);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 cg = bpf_get_current_cgroup_id();
	if (stella_task_filtered(pid_tgid >> 32, cg)) {
		stella_count(FE_PROBE_EXIT, STELLA_C_FILTERED);
		return 0;
	}
	struct fe_exit_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		stella_count(FE_PROBE_EXIT, STELLA_C_LOST);
		return 0;
	}
	stella_fill_header(&ev->hdr, STELLA_KIND_EXIT, pid_tgid, cg, bpf_ktime_get_ns());
	unsigned int sflags = BPF_CORE_READ(p, signal, flags);
	if (sflags & STELLA_SIGNAL_GROUP_EXIT)
		ev->exit_status = BPF_CORE_READ(p, signal, group_exit_code);
	else
		ev->exit_status = BPF_CORE_READ(p, exit_code);
	ev->pad = 0;
	ev->start_ns = BPF_CORE_READ(p, start_time);
	/* Counted before it is visible (see stella_output). */
	stella_count(FE_PROBE_EXIT, STELLA_C_EMITTED);
	bpf_ringbuf_submit(ev, stella_rb_flags_reserved(sizeof(*ev)));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(fe_exit_proc_btf, struct task_struct *p)
{
	return on_exit(p);
}

SEC("?raw_tp/sched_process_exit")
int BPF_PROG(fe_exit_proc_raw, struct task_struct *p)
{
	return on_exit(p);
}

/* ---- optional: every open, including io_uring and kernel-internal ones ---- */

static __always_inline int on_file_open(struct file *file)
{
	stella_seen(FE_PROBE_FILE_OPEN_LSM);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 cg = bpf_get_current_cgroup_id();
	if (stella_task_filtered(pid_tgid >> 32, cg)) {
		stella_count(FE_PROBE_FILE_OPEN_LSM, STELLA_C_FILTERED);
		return 0;
	}
	struct fe_scratch *s = scratch();
	if (!s) {
		stella_count(FE_PROBE_FILE_OPEN_LSM, STELLA_C_LOST);
		return 0;
	}
	struct fe_file_open_event *ev = &s->open;
	__u64 now = bpf_ktime_get_ns();
	stella_fill_header(&ev->hdr, STELLA_KIND_FILE_OPEN_LSM, pid_tgid, cg, now);
	ev->ret = 0;
	ev->flags = BPF_CORE_READ(file, f_flags);
	ev->mode = BPF_CORE_READ(file, f_mode);
	ev->dirfd = FE_AT_FDCWD;
	ev->syscall = FE_SYS_LSM;
	ev->resolution = FE_RES_FD;
	ev->path_flags = 0;
	long n = bpf_d_path((struct path *)&file->f_path, ev->path, FE_PATH_MAX);
	__u32 len = 0;
	if (n > 0)
		len = (n - 1) & (FE_PATH_MAX - 1);
	else
		ev->path_flags |= FE_PATH_TRUNCATED;
	ev->path_len = len;
	if (stella_path_filtered(ev->path, len, &s->prefix)) {
		stella_count(FE_PROBE_FILE_OPEN_LSM, STELLA_C_FILTERED);
		return 0;
	}
	struct stella_dedup_key key = {
		.cgroup_id = cg,
		.kind = STELLA_KIND_FILE_OPEN_LSM,
		.fclass = (ev->flags & 3) | ((ev->flags & 0100) ? FE_FCLASS_CREAT : 0),
	};
	if (cfg_dedup) {
		key.fclass |= fe_setup_class();
		key.hash = hash_bytes(ev->path, len);
		if (stella_dedup_seen(&key, now)) {
			stella_count(FE_PROBE_FILE_OPEN_LSM, STELLA_C_DEDUPLICATED);
			return 0;
		}
	}
	if (stella_output(FE_PROBE_FILE_OPEN_LSM, ev, offsetof(struct fe_file_open_event, path) + len) != 0)
		stella_dedup_forget(&key);
	return 0;
}

SEC("?lsm/file_open")
int BPF_PROG(fe_open_lsm, struct file *file)
{
	on_file_open(file);
	return 0; /* never deny */
}

SEC("?fentry/security_file_open")
int BPF_PROG(fe_open_fentry, struct file *file)
{
	return on_file_open(file);
}
