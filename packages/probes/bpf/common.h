/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by every probe object: the event header, the per-probe exact
 * counters, the in-kernel filters (pid exclusion, cgroup allow-list, path
 * prefix allow/deny) and dedup, and the ring-buffer submit policy.
 *
 * Accounting rule, relied on by tests: every event a probe sees increments
 * `seen` once on entry (stella_seen, before any filter, dedup or ring
 * reserve) and, once its fate is decided, exactly one of filtered,
 * deduplicated, emitted, lost (stella_count). The two are counted apart, so
 * seen = filtered + deduplicated + emitted + lost is a check user space can
 * make, not an identity: it holds whenever no program is mid-event.
 *
 * Layouts here are mirrored by src/layout.ts; test/btf-layout.test.ts checks
 * the mirror against the compiled object's BTF.
 */
#ifndef STELLA_COMMON_H
#define STELLA_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "compat.h"

#define STELLA_COMM_LEN 16
#define STELLA_MAX_PROBES 16
/* LPM trie keys hold at most 256 data bytes (LPM_DATA_SIZE_MAX, kernel/bpf/lpm_trie.c). */
#define STELLA_PREFIX_MAX 256

/* Record kinds: the first u32 after mono_ns/cgroup_id in every record. */
enum stella_kind {
	STELLA_KIND_FILE_OPEN = 1,
	STELLA_KIND_EXEC = 2,
	STELLA_KIND_EXIT = 3,
	STELLA_KIND_FILE_OPEN_LSM = 4,
	STELLA_KIND_CGROUP_MKDIR = 5, /* cgroup_track.h: not an evidence record */
};

/* Common header of every record (56 bytes). */
struct stella_event_header {
	__u64 mono_ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id; /* bpf_get_current_cgroup_id(): cgroup v2 inode */
	__u32 kind;      /* enum stella_kind */
	__u32 pid;       /* tgid */
	__u32 tid;
	__u32 ppid;      /* real_parent->tgid */
	__u32 uid;
	__u32 gid;
	char comm[STELLA_COMM_LEN];
};

/* Per-CPU, per-probe counters; user space sums over CPUs. `seen` first:
 * user space reads the terminal fields, then `seen` (src/probeset.ts). */
struct stella_counters {
	__u64 seen;
	__u64 filtered;
	__u64 deduplicated;
	__u64 emitted;
	__u64 lost;
};

/* Dedup bookkeeping (per CPU): evictions = inserts - deletes - live entries. */
struct stella_dedup_stats {
	__u64 inserts;  /* new keys added */
	__u64 deletes;  /* keys removed again because the record was lost */
	__u64 races;    /* insert found the key already there (another CPU won) */
	__u64 failures; /* insert failed otherwise (no free LRU node, -EBUSY bucket lock): record sent undeduplicated */
};

struct stella_dedup_key {
	__u64 cgroup_id;
	__u64 hash;      /* per kind: path bytes (file), filename + argv + exe (exec), endpoint (net) */
	__u32 kind;
	__u32 fclass;    /* per kind: flags class (file, fileexec.h), filename length (exec), call/outcome (net) */
};

struct stella_prefix_key {
	__u32 prefixlen; /* in bits */
	__u8 data[STELLA_PREFIX_MAX];
};

enum stella_prefix_action {
	STELLA_PREFIX_ALLOW = 1,
	STELLA_PREFIX_DENY = 2,
};

enum stella_counter_field {
	STELLA_C_FILTERED = 1,
	STELLA_C_DEDUPLICATED = 2,
	STELLA_C_EMITTED = 3,
	STELLA_C_LOST = 4,
};

/* Settings written between open and load (BpfObject.setGlobal). */
const volatile __u8 cfg_cgroup_filter = 0;  /* 1: only cgroups in cgroup_allow */
const volatile __u8 cfg_path_filter = 0;    /* 1: path_prefixes has entries */
const volatile __u8 cfg_path_allow = 0;     /* 1: allow-list non-empty: unmatched paths are filtered */
const volatile __u8 cfg_dedup = 1;          /* 1: dedup on */
const volatile __u64 cfg_wakeup_bytes = 0;  /* force a wakeup when this much data is queued; 0 never */
const volatile __u8 cfg_task_btf = 1;       /* 0: read the task without bpf_get_current_task_btf (stella_current_ppid) */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STELLA_MAX_PROBES);
	__type(key, __u32);
	__type(value, struct stella_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stella_dedup_stats);
} dedup_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} pid_exclude SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct stella_prefix_key);
	__type(value, __u8);
} path_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct stella_dedup_key);
	__type(value, __u64);
} dedup SEC(".maps");

/*
 * Counter and dedup-stat adds are atomic although the slots are per CPU:
 * tracing programs run with migration disabled, not preemption, so on a
 * PREEMPT kernel a program can be preempted mid-add by another program on
 * the same CPU (a uprobe, a sys_exit of another task) and a plain ++ would
 * lose a count.
 */
#define STELLA_ADD(field) __sync_fetch_and_add(&(field), 1)

/* An event reached `probe`: counted before any filter, dedup or reserve. */
static __always_inline void stella_seen(__u32 probe)
{
	struct stella_counters *c = bpf_map_lookup_elem(&counters, &probe);
	if (c)
		STELLA_ADD(c->seen);
}

/* The event's fate: exactly one call per stella_seen(). */
static __always_inline void stella_count(__u32 probe, int field)
{
	struct stella_counters *c = bpf_map_lookup_elem(&counters, &probe);
	if (!c)
		return;
	switch (field) {
	case STELLA_C_FILTERED: STELLA_ADD(c->filtered); break;
	case STELLA_C_DEDUPLICATED: STELLA_ADD(c->deduplicated); break;
	case STELLA_C_EMITTED: STELLA_ADD(c->emitted); break;
	default: STELLA_ADD(c->lost); break;
	}
}

/* True when the current task must not be reported: own pid or cgroup not allowed. */
static __always_inline bool stella_task_filtered(__u32 tgid, __u64 cgroup_id)
{
	if (bpf_map_lookup_elem(&pid_exclude, &tgid))
		return true;
	if (cfg_cgroup_filter) {
		if (bpf_map_lookup_elem(&cgroup_allow, &cgroup_id))
			return false;
		/* A listed ancestor (a pod, a slice) admits its descendants. */
		for (int level = 1; level < 8; level++) {
			__u64 anc = stella_ancestor_cgroup_id(level); /* compat.h: no helper before 5.14 */
			if (anc == 0 || anc == cgroup_id)
				break;
			if (bpf_map_lookup_elem(&cgroup_allow, &anc))
				return false;
		}
		return true;
	}
	return false;
}

/*
 * Path prefix filter on the resolved path. The longest matching prefix wins
 * (an allow of /var/lib/app under a deny of /var is honoured); a deny and an
 * allow of the same prefix is a deny (user space writes DENY last).
 * `key` is scratch space (too big for the stack).
 */
static __always_inline bool stella_path_filtered(const char *path, __u32 len,
						  struct stella_prefix_key *key)
{
	if (!cfg_path_filter)
		return false;
	__u32 n = len < STELLA_PREFIX_MAX ? len : STELLA_PREFIX_MAX;
	key->prefixlen = n * 8;
	if (bpf_probe_read_kernel(key->data, STELLA_PREFIX_MAX, path) < 0)
		return cfg_path_allow;
	__u8 *action = bpf_map_lookup_elem(&path_prefixes, key);
	if (action)
		return *action == STELLA_PREFIX_DENY;
	return cfg_path_allow;
}

/*
 * Dedup: true when this fact was already reported (the record is counted as
 * deduplicated). Otherwise the key is inserted and the caller must emit, and
 * call stella_dedup_forget() if the emit is lost so the fact is sent again.
 */
static __always_inline bool stella_dedup_seen(struct stella_dedup_key *key, __u64 now)
{
	if (!cfg_dedup)
		return false;
	__u32 zero = 0;
	struct stella_dedup_stats *st = bpf_map_lookup_elem(&dedup_stats, &zero);
	if (bpf_map_lookup_elem(&dedup, key))
		return true;
	long err = bpf_map_update_elem(&dedup, key, &now, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		/* Another CPU inserted the same key between lookup and update. */
		if (st)
			STELLA_ADD(st->races);
		return true;
	}
	if (err != 0) {
		/* Not remembered: better a duplicate later than a fact dropped now. */
		if (st)
			STELLA_ADD(st->failures);
		return false;
	}
	if (st)
		STELLA_ADD(st->inserts);
	return false;
}

static __always_inline void stella_dedup_forget(struct stella_dedup_key *key)
{
	if (!cfg_dedup)
		return;
	__u32 zero = 0;
	if (bpf_map_delete_elem(&dedup, key) == 0) {
		struct stella_dedup_stats *st = bpf_map_lookup_elem(&dedup_stats, &zero);
		if (st)
			STELLA_ADD(st->deletes);
	}
}

/*
 * Submit policy: no wakeup (the loader drains on a timer), except once when
 * this record makes the queued data cross cfg_wakeup_bytes, so a burst is
 * drained before the ring overflows. Waking on every record above the mark
 * instead costs an irq_work per record (~0.7 us measured in a VM) exactly
 * when the reader is already behind. `queued_after` is the data queued once
 * this record of `size` bytes is in (BPF_RB_AVAIL_DATA before an output,
 * after a reserve).
 */
static __always_inline __u64 stella_rb_flags_at(__u64 queued_after, __u64 size)
{
	if (cfg_wakeup_bytes && queued_after >= cfg_wakeup_bytes && queued_after - size < cfg_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Flags for bpf_ringbuf_output of `size` bytes (+ 8 bytes of ring record header). */
static __always_inline __u64 stella_rb_flags(__u64 size)
{
	if (!cfg_wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	return stella_rb_flags_at(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + size + 8, size + 8);
}

/* Flags for bpf_ringbuf_submit of a record of `size` bytes already reserved. */
static __always_inline __u64 stella_rb_flags_reserved(__u64 size)
{
	if (!cfg_wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	return stella_rb_flags_at(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), size + 8);
}

/* Copy a variable-length record into the ring; counts emitted or lost. */
/*
 * `emitted` is counted before the record becomes visible: user space may
 * take a record from the ring while its program is still running (a uprobe
 * or a syscall exit can be preempted right after the output), and must
 * never hold more records than the kernel says it emitted. A failed output
 * takes the count back before counting the loss, so a reader in between
 * sees the event in flight, never counted twice.
 */
static __always_inline int stella_output(__u32 probe, void *data, __u64 size)
{
	struct stella_counters *c = bpf_map_lookup_elem(&counters, &probe);
	if (c)
		STELLA_ADD(c->emitted);
	if (bpf_ringbuf_output(&events, data, size, stella_rb_flags(size)) != 0) {
		if (c)
			__sync_fetch_and_add(&c->emitted, (__u64)-1); /* an add, not a fetch: loads before 5.12 */
		stella_count(probe, STELLA_C_LOST);
		return -1;
	}
	return 0;
}

/*
 * The parent's tgid. bpf_get_current_task_btf (5.11) returns a BTF pointer:
 * direct, fault-safe loads and no helper call per field. Older kernels get
 * bpf_get_current_task() and CO-RE reads. libbpf resolves the enum check at
 * load (0 where the running kernel lacks the helper) and the verifier drops
 * the dead branch, so one object loads on both; cfg_task_btf = 0 (written by
 * user space) forces the fallback, which is how it is tested on new kernels.
 */
static __always_inline __u32 stella_current_ppid(void)
{
	if (cfg_task_btf && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
		struct task_struct *task = bpf_get_current_task_btf();
		return task->real_parent->tgid;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, real_parent, tgid);
}

/* Fill the common header from the current task. */
static __always_inline void stella_fill_header(struct stella_event_header *h, __u32 kind,
					       __u64 pid_tgid, __u64 cgroup_id, __u64 now)
{
	__u64 ugid = bpf_get_current_uid_gid();
	h->mono_ns = now;
	h->cgroup_id = cgroup_id;
	h->kind = kind;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = stella_current_ppid();
	h->uid = (__u32)ugid;
	h->gid = ugid >> 32;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* FNV-1a 64 constants. */
#define STELLA_FNV_OFFSET 0xcbf29ce484222325ULL
#define STELLA_FNV_PRIME 0x100000001b3ULL

#endif /* STELLA_COMMON_H */
