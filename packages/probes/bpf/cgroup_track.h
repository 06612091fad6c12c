/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup creation, for container attribution (packages/enrich): each new
 * cgroup of the default (v2) hierarchy is reported with its id and path when
 * it is made, so user space knows id -> path before the first record of a
 * process in it, however short the container lived. Not an evidence record:
 * the collector feeds it to the container tracker.
 *
 * Included by fileexec.bpf.c (one ring buffer: a cgroup's event is always
 * read before the records of the processes that ran in it). Attach: the
 * cgroup_mkdir tracepoint through tp_btf, or raw_tp where tp_btf is missing
 * (src/probeset.ts picks, like the other probes). The record layout is
 * mirrored by src/layout.ts (LAYOUT.fe_cgroup_event, checked against this
 * object's BTF by test/btf-layout.test.ts) and decoded by src/cgroup-event.ts.
 */
#ifndef STELLA_CGROUP_TRACK_H
#define STELLA_CGROUP_TRACK_H

#include "common.h"

/* TRACE_CGROUP_PATH_LEN in kernel/cgroup/cgroup-internal.h: the tracepoint's path buffer. */
#define FE_CGROUP_PATH_MAX 1024

/* Counter slot of this probe (after enum fe_probe's FE_PROBE_FILE_OPEN_LSM = 3). */
#define FE_PROBE_CGROUP_MKDIR 4

/* cgroup_flags bits */
#define FE_CGROUP_PATH_TRUNCATED 0x1

struct fe_cgroup_event {
	struct stella_event_header hdr; /* the task that made the cgroup (runc, systemd, ...) */
	__u64 id;                       /* the new cgroup's id: what bpf_get_current_cgroup_id() returns inside it */
	__u32 level;                    /* depth below the v2 root (1 = a child of the root) */
	__u32 path_len;                 /* bytes of path[] used, without a NUL */
	__u32 cgroup_flags;             /* FE_CGROUP_* */
	__u32 pad;
	char path[FE_CGROUP_PATH_MAX];  /* path from the v2 root, as in /proc/<pid>/cgroup's 0:: line */
};

/* Where the record is built: only its used part (header + path_len bytes) goes to the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fe_cgroup_event);
} fe_cgroup_scratch SEC(".maps");

/*
 * Only the default hierarchy's ids are what bpf_get_current_cgroup_id()
 * returns. On a hybrid (v1 + v2) host runtimes make a cgroup in every v1
 * hierarchy too; those are counted as filtered. The default hierarchy's
 * hierarchy_id is 0 (the `0::` line of /proc/<pid>/cgroup); v1 ones are >= 1.
 * Never filtered by pid or cgroup allow-list: the tracker needs every path.
 */
static __always_inline int on_cgroup_mkdir(struct cgroup *cgrp, const char *path)
{
	stella_seen(FE_PROBE_CGROUP_MKDIR);
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0) {
		stella_count(FE_PROBE_CGROUP_MKDIR, STELLA_C_FILTERED);
		return 0;
	}
	__u32 zero = 0;
	struct fe_cgroup_event *ev = bpf_map_lookup_elem(&fe_cgroup_scratch, &zero);
	if (!ev) {
		stella_count(FE_PROBE_CGROUP_MKDIR, STELLA_C_LOST);
		return 0;
	}
	stella_fill_header(&ev->hdr, STELLA_KIND_CGROUP_MKDIR, bpf_get_current_pid_tgid(),
			   bpf_get_current_cgroup_id(), bpf_ktime_get_ns());
	ev->id = BPF_CORE_READ(cgrp, kn, id);
	ev->level = BPF_CORE_READ(cgrp, level);
	ev->cgroup_flags = 0;
	ev->pad = 0;
	long n = bpf_probe_read_kernel_str(ev->path, sizeof(ev->path), path);
	__u32 len = n > 0 ? (__u32)(n - 1) : 0;
	if (len >= FE_CGROUP_PATH_MAX - 1)
		ev->cgroup_flags |= FE_CGROUP_PATH_TRUNCATED;
	STELLA_OPAQUE(len);
	len &= FE_CGROUP_PATH_MAX - 1;
	ev->path_len = len;
	stella_output(FE_PROBE_CGROUP_MKDIR, ev, offsetof(struct fe_cgroup_event, path) + len);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(fe_cgroup_mkdir_btf, struct cgroup *cgrp, const char *path)
{
	return on_cgroup_mkdir(cgrp, path);
}

SEC("?raw_tp/cgroup_mkdir")
int BPF_PROG(fe_cgroup_mkdir_raw, struct cgroup *cgrp, const char *path)
{
	return on_cgroup_mkdir(cgrp, path);
}

#endif /* STELLA_CGROUP_TRACK_H */
