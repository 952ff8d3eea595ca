# Sourced by the image scripts: podman as this machine (root in a VM sandbox, no Docker) runs it.
# - vfs storage: works on any filesystem, no overlay mount needed (slower: a copy per layer);
# - runc: Debian's crun refuses the hybrid cgroup v1/v2 layout of this machine;
# - rlimits at or below the current ones: without CAP_SYS_RESOURCE the runtime may not
#   raise them to podman's defaults (nproc is refused even at its current value here).
podman() {
    local cmd=$1
    shift
    case $cmd in
        run | create)
            command podman --storage-driver vfs --runtime runc "$cmd" \
                --ulimit "nofile=$(ulimit -n):$(ulimit -Hn)" \
                --ulimit nproc=4096:4096 "$@"
            ;;
        *) command podman --storage-driver vfs --runtime runc "$cmd" "$@" ;;
    esac
}
