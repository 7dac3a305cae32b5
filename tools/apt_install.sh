# Sourced by tools/ensure_*.sh (not run on its own).
# apt_install PKG...: install the named Debian packages (none: do nothing), as root or through
# sudo, quietly and without recommended packages.
apt_install() {
    (($#)) || return 0
    echo "installing: $*"
    local sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@"
}
