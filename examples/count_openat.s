# Count openat() calls per process: attach to syscalls/sys_enter_openat.
#   ebpf asm examples/count_openat.s --attach tracepoint:syscalls:sys_enter_openat -d 5
.map counts type=hash key=4 value=8 max_entries=10240

        call bpf_get_current_pid_tgid
        r0 >>= 32                       # tgid: the process id
        *(u32 *)(r10 - 4) = w0
        r1 = map[counts] ll
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto first
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1     # seen before: atomic increment
        goto out
first:
        r1 = 1
        *(u64 *)(r10 - 16) = r1
        r1 = map[counts] ll
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 1                          # BPF_NOEXIST: a racing first call keeps its own count
        call bpf_map_update_elem
        if r0 == 0 goto out
        r1 = map[counts] ll             # lost the race: the entry exists now, increment it
        r2 = r10
        r2 += -4
        call bpf_map_lookup_elem
        if r0 == 0 goto out
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
out:
        r0 = 0
        exit
