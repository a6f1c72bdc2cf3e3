package capture

// The BPF objects are generated for both supported architectures and
// committed; `make generate` (clang) rebuilds them. bpfsrc.sha256 records the
// sources they were built from (checked by TestGeneratedFresh).
//go:generate go tool bpf2go -tags linux -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type tl_event -type tl_config -type tl_stats -type tl_args -type tl_kfilter -type tl_kf_prefix -type tl_kf_name -type tl_kf_sock -type tl_kf_port_iv -type tl_kf_addr -type tl_kf_host tripline ../../bpf/tripline.bpf.c -- -I../../bpf
//go:generate sh -c "sha256sum ../../bpf/tripline.bpf.c ../../bpf/tripline.h ../../bpf/helpers.h ../../bpf/headers/vmlinux_min.h > bpfsrc.sha256"
