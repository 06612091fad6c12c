#!/bin/sh
# PID 1 of the kernel-VM initramfs (busybox). Loads the virtio/9p/overlay
# modules, mounts the host's root (read-only 9p) under a tmpfs overlay so the
# tests can write anywhere without touching the host, mounts the kernel's
# pseudo file systems there, runs guest.sh in it and powers off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
for m in $(cat /modules); do insmod "/lib/modules/$m.ko" || echo "[init] insmod $m failed"; done
ip link set lo up
# The guest's 9p cache mode (run.sh: KERNEL_VM_9P_CACHE). 'loose' is fastest but trusts the host
# files not to change while the VM runs: a file edited on the host meanwhile is read with its old
# size (truncated sources, parse errors). 'mmap' reads through on every access.
cache=$(param stella_9p_cache)
mount -t 9p -o "trans=virtio,version=9p2000.L,ro,msize=512000,cache=${cache:-mmap}" host /host || echo "[init] mounting the host root failed"
mount -t tmpfs -o mode=0755 scratch /scratch
mkdir -p /scratch/upper /scratch/work
if ! mount -t overlay overlay -o lowerdir=/host,upperdir=/scratch/upper,workdir=/scratch/work /newroot; then
  echo "[init] overlay failed: the root stays read-only"
  mount --bind /host /newroot
fi
r=/newroot
# /usr (and /bin, /lib, /sbin, links into it) is the 9p share itself, read-only: overlayfs over
# layers on different file systems (9p below, tmpfs above) gives stat(2) a per-layer device but
# the kernel its own, so an executed system binary's device would not match what the exec
# records report (exe_dev, and the digest check that compares them). Nothing writes to /usr.
mount --bind /host/usr $r/usr || echo "[init] binding /usr failed"
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs tmpfs $r/dev/shm
# A clean /tmp and /run in the guest; a checkout that lives under one of them (a CI clone in a
# `mktemp -d` folder) is kept: held aside, then moved back onto the fresh tmpfs.
repo=$(param stella_repo)
kept=
case "$repo" in
  /tmp/* | /run/*) mkdir -p /scratch/repo && mount -o bind "$r$repo" /scratch/repo && kept=1 ;;
esac
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mount -t tmpfs -o mode=0755 tmpfs $r/run
if [ -n "$kept" ]; then
  mkdir -p "$r$repo" && mount -o move /scratch/repo "$r$repo" || echo "[init] keeping the checkout $repo failed"
fi
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup
mount -t bpf bpf $r/sys/fs/bpf
mount -t tracefs tracefs $r/sys/kernel/tracing
mount -t debugfs debugfs $r/sys/kernel/debug
mkdir -p $r/kvm-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out $r/kvm-out
tests=$(param stella_tests)
echo "[init] $(cat /proc/version)"
echo "[init] clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null), $(grep -c ^processor /proc/cpuinfo) CPU(s)"
chroot $r /bin/bash "$repo/tools/kernel-vm/guest.sh" "$repo" "$tests"
echo "[init] guest exited with $?"
sync
umount $r/kvm-out
poweroff -f
