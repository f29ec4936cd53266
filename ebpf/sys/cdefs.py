"""C declarations of the kernel ABI we call: ``union bpf_attr``, ``perf_event_attr``, info structs.

Transcribed from include/uapi/linux/bpf.h and perf_event.h. Each anonymous member of the kernel's
``union bpf_attr`` gets a named struct here so that Python code can fill the variant of one
command. The text is compiled once, at build time, into the pure-Python module
``ebpf.sys._ffi`` (cffi's out-of-line ABI mode): parsing it at every start would cost ~25 ms.
"""

CDEF = r"""
long syscall(long number, ...);
int close(int fd);

struct bpf_attr_map_create {
    uint32_t map_type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    uint32_t inner_map_fd;
    uint32_t numa_node;
    char     map_name[16];
    uint32_t map_ifindex;
    uint32_t btf_fd;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t btf_vmlinux_value_type_id;
    uint64_t map_extra;
    int32_t  value_type_btf_obj_fd;
    int32_t  map_token_fd;
};

struct bpf_attr_map_elem {
    uint32_t map_fd;
    uint64_t key;
    uint64_t value;          /* also next_key */
    uint64_t flags;
};

struct bpf_attr_map_batch {
    uint64_t in_batch;
    uint64_t out_batch;
    uint64_t keys;
    uint64_t values;
    uint32_t count;
    uint32_t map_fd;
    uint64_t elem_flags;
    uint64_t flags;
};

struct bpf_attr_prog_load {
    uint32_t prog_type;
    uint32_t insn_cnt;
    uint64_t insns;
    uint64_t license;
    uint32_t log_level;
    uint32_t log_size;
    uint64_t log_buf;
    uint32_t kern_version;
    uint32_t prog_flags;
    char     prog_name[16];
    uint32_t prog_ifindex;
    uint32_t expected_attach_type;
    uint32_t prog_btf_fd;
    uint32_t func_info_rec_size;
    uint64_t func_info;
    uint32_t func_info_cnt;
    uint32_t line_info_rec_size;
    uint64_t line_info;
    uint32_t line_info_cnt;
    uint32_t attach_btf_id;
    uint32_t attach_prog_fd;  /* also attach_btf_obj_fd */
    uint32_t core_relo_cnt;
    uint64_t fd_array;
    uint64_t core_relos;
    uint32_t core_relo_rec_size;
    uint32_t log_true_size;
    int32_t  prog_token_fd;
    uint32_t fd_array_cnt;
};

struct bpf_attr_obj {
    uint64_t pathname;
    uint32_t bpf_fd;
    uint32_t file_flags;
    int32_t  path_fd;
};

struct bpf_attr_prog_attach {
    uint32_t target_fd;       /* also target_ifindex */
    uint32_t attach_bpf_fd;
    uint32_t attach_type;
    uint32_t attach_flags;
    uint32_t replace_bpf_fd;
    uint32_t relative_fd;     /* also relative_id */
    uint64_t expected_revision;
};

struct bpf_attr_test_run {
    uint32_t prog_fd;
    uint32_t retval;
    uint32_t data_size_in;
    uint32_t data_size_out;
    uint64_t data_in;
    uint64_t data_out;
    uint32_t repeat;
    uint32_t duration;
    uint32_t ctx_size_in;
    uint32_t ctx_size_out;
    uint64_t ctx_in;
    uint64_t ctx_out;
    uint32_t flags;
    uint32_t cpu;
    uint32_t batch_size;
};

struct bpf_attr_get_id {
    uint32_t start_id;        /* also prog_id, map_id, btf_id, link_id */
    uint32_t next_id;
    uint32_t open_flags;
    int32_t  fd_by_id_token_fd;
};

struct bpf_attr_info {
    uint32_t bpf_fd;
    uint32_t info_len;
    uint64_t info;
};

struct bpf_attr_raw_tracepoint {
    uint64_t name;
    uint32_t prog_fd;
    uint32_t _pad;
    uint64_t cookie;
};

struct bpf_attr_btf_load {
    uint64_t btf;
    uint64_t btf_log_buf;
    uint32_t btf_size;
    uint32_t btf_log_size;
    uint32_t btf_log_level;
    uint32_t btf_log_true_size;
    uint32_t btf_flags;
    int32_t  btf_token_fd;
};

struct bpf_link_create_kprobe_multi {
    uint32_t flags;
    uint32_t cnt;
    uint64_t syms;
    uint64_t addrs;
    uint64_t cookies;
};

struct bpf_link_create_uprobe_multi {
    uint64_t path;
    uint64_t offsets;
    uint64_t ref_ctr_offsets;
    uint64_t cookies;
    uint32_t cnt;
    uint32_t flags;
    uint32_t pid;
    uint32_t path_fd;
};

struct bpf_link_create_tracing {
    uint32_t target_btf_id;
    uint64_t cookie;
};

struct bpf_link_create_iter {
    uint64_t iter_info;
    uint32_t iter_info_len;
};

struct bpf_link_create_relative {
    uint32_t relative_fd;     /* also relative_id */
    uint64_t expected_revision;
};

struct bpf_link_create_netfilter {
    uint32_t pf;
    uint32_t hooknum;
    int32_t  priority;
    uint32_t flags;
};

struct bpf_attr_link_create {
    uint32_t prog_fd;         /* also map_fd */
    uint32_t target_fd;       /* also target_ifindex */
    uint32_t attach_type;
    uint32_t flags;
    union {
        uint32_t target_btf_id;
        struct bpf_link_create_iter iter;
        uint64_t perf_event_bpf_cookie;
        struct bpf_link_create_kprobe_multi kprobe_multi;
        struct bpf_link_create_tracing tracing;
        struct bpf_link_create_netfilter netfilter;
        struct bpf_link_create_relative tcx;
        struct bpf_link_create_uprobe_multi uprobe_multi;
        struct bpf_link_create_relative netkit;
        struct bpf_link_create_relative cgroup;
    } u;
};

struct bpf_attr_link_detach {
    uint32_t link_fd;
};

struct bpf_attr_enable_stats {
    uint32_t type;
};

struct bpf_attr_iter_create {
    uint32_t link_fd;
    uint32_t flags;
};

struct bpf_attr_prog_bind_map {
    uint32_t prog_fd;
    uint32_t map_fd;
    uint32_t flags;
};

union bpf_attr {
    struct bpf_attr_map_create map_create;
    struct bpf_attr_map_elem map_elem;
    struct bpf_attr_map_batch batch;
    struct bpf_attr_prog_load prog_load;
    struct bpf_attr_obj obj;
    struct bpf_attr_prog_attach prog_attach;
    struct bpf_attr_test_run test;
    struct bpf_attr_get_id get_id;
    struct bpf_attr_info info;
    struct bpf_attr_raw_tracepoint raw_tracepoint;
    struct bpf_attr_btf_load btf_load;
    struct bpf_attr_link_create link_create;
    struct bpf_attr_link_detach link_detach;
    struct bpf_attr_enable_stats enable_stats;
    struct bpf_attr_iter_create iter_create;
    struct bpf_attr_prog_bind_map prog_bind_map;
    uint64_t _size[20];
};

struct bpf_prog_info {
    uint32_t type;
    uint32_t id;
    uint8_t  tag[8];
    uint32_t jited_prog_len;
    uint32_t xlated_prog_len;
    uint64_t jited_prog_insns;
    uint64_t xlated_prog_insns;
    uint64_t load_time;
    uint32_t created_by_uid;
    uint32_t nr_map_ids;
    uint64_t map_ids;
    char     name[16];
    uint32_t ifindex;
    uint32_t gpl_compatible;  /* bit 0 */
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t nr_jited_ksyms;
    uint32_t nr_jited_func_lens;
    uint64_t jited_ksyms;
    uint64_t jited_func_lens;
    uint32_t btf_id;
    uint32_t func_info_rec_size;
    uint64_t func_info;
    uint32_t nr_func_info;
    uint32_t nr_line_info;
    uint64_t line_info;
    uint64_t jited_line_info;
    uint32_t nr_jited_line_info;
    uint32_t line_info_rec_size;
    uint32_t jited_line_info_rec_size;
    uint32_t nr_prog_tags;
    uint64_t prog_tags;
    uint64_t run_time_ns;
    uint64_t run_cnt;
    uint64_t recursion_misses;
    uint32_t verified_insns;
    uint32_t attach_btf_obj_id;
    uint32_t attach_btf_id;
    uint32_t _pad;
};

struct bpf_map_info {
    uint32_t type;
    uint32_t id;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    char     name[16];
    uint32_t ifindex;
    uint32_t btf_vmlinux_value_type_id;
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t btf_id;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t btf_vmlinux_id;
    uint64_t map_extra;
};

struct bpf_link_info_head {
    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    uint32_t _pad;
    uint64_t u[8];
};

struct bpf_btf_info {
    uint64_t btf;
    uint32_t btf_size;
    uint32_t id;
    uint64_t name;
    uint32_t name_len;
    uint32_t kernel_btf;
};

struct perf_event_attr {
    uint32_t type;
    uint32_t size;
    uint64_t config;
    uint64_t sample_period;   /* also sample_freq */
    uint64_t sample_type;
    uint64_t read_format;
    uint64_t flags;           /* the kernel's bitfield word: disabled, inherit, ... */
    uint32_t wakeup_events;   /* also wakeup_watermark */
    uint32_t bp_type;
    uint64_t config1;         /* also bp_addr, kprobe_func, uprobe_path */
    uint64_t config2;         /* also bp_len, kprobe_addr, probe_offset */
    uint64_t branch_sample_type;
    uint64_t sample_regs_user;
    uint32_t sample_stack_user;
    int32_t  clockid;
    uint64_t sample_regs_intr;
    uint32_t aux_watermark;
    uint16_t sample_max_stack;
    uint16_t _reserved_2;
    uint32_t aux_sample_size;
    uint32_t aux_action;
    uint64_t sig_data;
    uint64_t config3;
};
"""
