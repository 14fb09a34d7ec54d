# shellcheck shell=bash
# Serialises builds into one cache directory. Several test runs may call a build script at once:
# the first builds, the others wait for it and then find its output in place. Sourced by the
# hack/build-*.sh scripts (and hack/lib/go-binaries.sh); uses the caller's `log`. flock is
# util-linux: without it, builds are simply not serialised.

# take_build_lock <lock file> <what is built, for the log line>
# Holds the lock on file descriptor 9 until the calling shell exits.
take_build_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$1"
  if ! flock -n 9; then
    log "another build of $2 is running; waiting for it"
    flock 9
  fi
}
