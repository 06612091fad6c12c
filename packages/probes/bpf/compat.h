/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel quirks, in one place. Each entry says which kernels and why.
 * Probe sources include this after vmlinux.h and never test kernel versions:
 * CO-RE field checks and load-time feature probes (see src/probeset.ts) decide.
 */
#ifndef STELLA_COMPAT_H
#define STELLA_COMPAT_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/*
 * Syscall numbers. The generic sys_enter/sys_exit tracepoints report the
 * native syscall number; 32-bit compat (ia32) syscalls use another table and
 * are not traced by this object (documented limitation).
 * x86_64: arch/x86/entry/syscalls/syscall_64.tbl.
 * arm64 has no open(2)/creat(2): include/uapi/asm-generic/unistd.h.
 */
#if defined(__TARGET_ARCH_x86)
#define NR_open 2
#define NR_creat 85
#define NR_open_by_handle_at 304
#define NR_openat 257
#define NR_openat2 437
/*
 * User-space syscall arguments in the pt_regs seen by raw sys_enter.
 * SYSCALL_*(regs) read through bpf_probe_read_kernel (any program type);
 * SYSCALL_*_REG(regs, direct) load directly when `direct` (a compile-time
 * constant) says regs is a BTF pointer, as in tp_btf: no helper call.
 */
#define STELLA_REG(regs, field, direct) ((direct) ? (regs)->field : BPF_CORE_READ((regs), field))
#define SYSCALL_ARG1(regs) BPF_CORE_READ((regs), di)
#define SYSCALL_ARG1_REG(regs, direct) STELLA_REG(regs, di, direct)
#define SYSCALL_ARG2(regs) BPF_CORE_READ((regs), si)
#define SYSCALL_ARG2_REG(regs, direct) STELLA_REG(regs, si, direct)
#define SYSCALL_ARG3(regs) BPF_CORE_READ((regs), dx)
#define SYSCALL_ARG3_REG(regs, direct) STELLA_REG(regs, dx, direct)
#define SYSCALL_ARG4(regs) BPF_CORE_READ((regs), r10)
#define SYSCALL_ARG4_REG(regs, direct) STELLA_REG(regs, r10, direct)
/* At sys_exit the syscall number is only in orig_ax. */
#define SYSCALL_NR(regs) BPF_CORE_READ((regs), orig_ax)
#define SYSCALL_NR_REG(regs, direct) STELLA_REG(regs, orig_ax, direct)
#elif defined(__TARGET_ARCH_arm64)
#define NR_open (-1)
#define NR_creat (-1)
#define NR_open_by_handle_at 265
#define NR_openat 56
#define NR_openat2 437
#define SYSCALL_ARG1(regs) BPF_CORE_READ((regs), orig_x0)
#define SYSCALL_ARG1_REG(regs, direct) STELLA_REG(regs, orig_x0, direct)
#define SYSCALL_ARG2(regs) BPF_CORE_READ((regs), regs[1])
#define SYSCALL_ARG2_REG(regs, direct) STELLA_REG(regs, regs[1], direct)
#define SYSCALL_ARG3(regs) BPF_CORE_READ((regs), regs[2])
#define SYSCALL_ARG3_REG(regs, direct) STELLA_REG(regs, regs[2], direct)
#define SYSCALL_ARG4(regs) BPF_CORE_READ((regs), regs[3])
#define SYSCALL_ARG4_REG(regs, direct) STELLA_REG(regs, regs[3], direct)
#define SYSCALL_NR(regs) BPF_CORE_READ((regs), syscallno)
#define SYSCALL_NR_REG(regs, direct) STELLA_REG(regs, syscallno, direct)
#else
#error "unsupported architecture: define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

/*
 * struct mount is private to fs/ (fs/mount.h) but present in BTF; the walk
 * from a vfsmount to its struct mount is container_of, done with the CO-RE
 * offset of the embedded `mnt` so a layout change relocates.
 */
static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((char *)mnt - bpf_core_field_offset(struct mount, mnt));
}

/*
 * The current task's cgroup v2 ancestor id at `level` (0 = the root), or 0
 * above the task's own level: what bpf_get_current_ancestor_cgroup_id
 * returns. That helper reaches tracing programs only in 5.14 (kernel commit
 * "bpf: Allow bpf_get_current_ancestor_cgroup_id for tracing"); a 5.10
 * verifier rejects it. So the walk is done here, with CO-RE, on every kernel:
 * older kernels keep the ids in cgroup->ancestor_ids[]; newer ones keep
 * pointers in cgroup->ancestors[] (kernel commit "cgroup: Replace
 * cgroup->ancestor_ids[] with ->ancestors[]"); the field that exists is
 * used. The id is kernfs_node->id, as bpf_get_current_cgroup_id reports it.
 */
struct cgroup___ancestor_ids {
	int level;
	__u64 ancestor_ids[];
} __attribute__((preserve_access_index));

static __always_inline __u64 stella_ancestor_cgroup_id(int level)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	if (!cg || level < 0 || level > BPF_CORE_READ(cg, level))
		return 0;
	__u64 id = 0;
	if (bpf_core_field_exists(struct cgroup___ancestor_ids, ancestor_ids)) {
		__u64 off = bpf_core_field_offset(struct cgroup___ancestor_ids, ancestor_ids);
		bpf_probe_read_kernel(&id, sizeof(id), (char *)cg + off + (__u64)level * 8);
	} else {
		struct cgroup *anc = NULL;
		__u64 off = bpf_core_field_offset(struct cgroup, ancestors);
		bpf_probe_read_kernel(&anc, sizeof(anc), (char *)cg + off + (__u64)level * 8);
		id = BPF_CORE_READ(anc, kn, id);
	}
	return id;
}

/*
 * The exit status of a process whose last thread exits. When the group is
 * killed or calls exit_group(2), signal->group_exit_code holds the status the
 * parent will see (kernel/exit.c do_group_exit); otherwise task->exit_code.
 * SIGNAL_GROUP_EXIT is 0x4 in include/linux/sched/signal.h since 2.6.
 */
#define STELLA_SIGNAL_GROUP_EXIT 0x00000004

/*
 * Kernel floor, feature by feature (tools/kernel-vm boots 5.10, 6.1 and 6.12):
 * - ring buffers: 5.8. tp_btf: 5.5 (raw_tp, 4.17, is the fallback).
 * - the cwd/dirfd path walk: a bounded loop (5.3) over a global function
 *   (5.6), fe_walk_step in fileexec.bpf.c; bpf_loop (5.17) is not used.
 * - bpf_get_current_task_btf: 5.11; stella_current_ppid (common.h) falls
 *   back to bpf_get_current_task + CO-RE, chosen at load by a CO-RE enum
 *   check, so the object carries no kernel version.
 * lsm/file_open needs CONFIG_BPF_LSM with "bpf" in the lsm= list; fentry
 * needs CONFIG_FUNCTION_TRACER with direct calls: both are optional and
 * feature-probed before load.
 */

/*
 * Hide a value's known range from the compiler so a following `&= mask`
 * survives optimisation: the verifier (any kernel) needs the mask to bound a
 * variable size or offset, while clang drops it when it can prove the value
 * already fits.
 */
#define STELLA_OPAQUE(v) asm volatile("" : "+r"(v))

#endif /* STELLA_COMPAT_H */
