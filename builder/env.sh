#!/usr/bin/env bash
# The project's one pinned environment (the "builder image" of the seed paper, without
# Docker). `builder/env.sh run CMD...` runs CMD inside it, building it first if needed.
#
# Hosts with glibc >= 2.39 and Python 3.10-3.13 get a plain virtualenv. Older hosts
# (Debian 12, Ubuntu 22.04) cannot load the TFX 1.21 wheels (manylinux_2_39), so there we
# build a Debian trixie root with debootstrap once and enter it with bubblewrap.
# Either way the environment is cached outside the checkout under a key derived from the
# lock file (and the root's package list): a lock change rebuilds it, nothing else does.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
checkout=$(cd "$here/.." && pwd)
lock="$checkout/requirements.lock"
tools_lock="$here/deploy-tools.lock"
# The app's own small lock (no training stack): a third virtualenv, keyed by its own hash,
# so changing it rebuilds that virtualenv alone (seconds), not the whole environment.
app_lock="$checkout/serving/requirements.lock"
root_packages="$here/root-packages.txt"
cache="${TAGGER_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/so-tagger}"
pip_cache="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}"
min_free_gb=8

say() { printf '[env] %s\n' "$*" >&2; }
die() { printf '[env] error: %s\n' "$*" >&2; exit 1; }

key=$(cat "$lock" "$tools_lock" "$root_packages" | sha256sum | cut -c1-16)
app_key=$(sha256sum <"$app_lock" | cut -c1-16)

host_can_use_venv() {
  local glibc py
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') || return 1
  [ -n "$glibc" ] || return 1
  # sort -V puts the smaller version first: 2.39 must not be the larger one.
  [ "$(printf '%s\n2.39\n' "$glibc" | sort -V | head -1)" = "2.39" ] || return 1
  py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || return 1
  case "$py" in 3.10|3.11|3.12|3.13) return 0 ;; *) return 1 ;; esac
}

check_disk() {
  mkdir -p "$cache"
  local free_kb
  free_kb=$(df -Pk "$cache" | awk 'NR==2 {print $4}')
  if [ "$free_kb" -lt $((min_free_gb * 1024 * 1024)) ]; then
    die "only $((free_kb / 1024 / 1024)) GB free under $cache; the environment needs about $min_free_gb GB (set TAGGER_ENV_CACHE to a roomier place)."
  fi
}

check_network() {
  local url=https://pypi.org/simple/pip/ ok=1
  # A fresh host may have neither curl nor python3; then pip itself will say.
  if command -v curl >/dev/null; then
    curl -fsS --max-time 30 -o /dev/null "$url" 2>/dev/null || ok=0
  elif command -v python3 >/dev/null; then
    python3 -c "import urllib.request as u; u.urlopen('$url', timeout=30)" 2>/dev/null || ok=0
  fi
  [ "$ok" = 1 ] || die "cannot reach the Python package index (https://pypi.org); the first build needs it."
}

pip_install_lock() { # $1: python inside the environment (as seen by the caller of $2...)
  "$@" -m pip install --disable-pip-version-check --progress-bar off -q --upgrade pip
  "$@" -m pip install --disable-pip-version-check --progress-bar off -q \
    --no-deps --require-hashes -r "$lock" >&2 ||
    die "pip could not install requirements.lock (see above): no network to the package index, or disk full?"
  "$@" -m pip check >&2 || die "the installed packages do not fit together (pip check failed); the lock file is inconsistent."
  "$@" -c 'import tfx, tensorflow' 2>/dev/null || die "the environment was installed but TFX does not import; see the pip output above."
}

pip_install_tools() { # $1...: python of the tools' own virtualenv
  "$@" -m pip install --disable-pip-version-check --progress-bar off -q \
    --no-deps --require-hashes -r "$tools_lock" >&2 ||
    die "pip could not install builder/deploy-tools.lock (see above)."
}

pip_install_app() { # $1...: python of the app's own virtualenv
  "$@" -m pip install --disable-pip-version-check --progress-bar off -q \
    --no-deps --require-hashes -r "$app_lock" >&2 ||
    die "pip could not install serving/requirements.lock (see above)."
  "$@" -m pip check >&2 || die "the app's packages do not fit together (pip check failed)."
}

# --- virtualenv mode ---------------------------------------------------------------------
venv_dir="$cache/venv-$key"
tools_dir="$cache/tools-$key"
app_dir="$cache/app-$app_key"

build_app_venv() {
  say "building the app's virtualenv $app_dir from serving/requirements.lock"
  rm -rf "$app_dir"
  python3 -m venv "$app_dir"
  PIP_CACHE_DIR="$pip_cache" pip_install_app "$app_dir/bin/python"
  touch "$app_dir/.complete"
}

build_venv() {
  check_disk; check_network
  say "building virtualenv $venv_dir from requirements.lock (first build takes several minutes)"
  rm -rf "$venv_dir"
  python3 -m venv "$venv_dir"
  PIP_CACHE_DIR="$pip_cache" pip_install_lock "$venv_dir/bin/python"
  rm -rf "$tools_dir"
  python3 -m venv "$tools_dir"
  PIP_CACHE_DIR="$pip_cache" pip_install_tools "$tools_dir/bin/python"
  touch "$venv_dir/.complete"
  say "virtualenv ready"
}

# --- builder-root mode -------------------------------------------------------------------
root_dir="$cache/root-$key"

need_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || command -v sudo >/dev/null ||
    die "this host (glibc < 2.39) needs ${missing[*]} and you are not root; ask an administrator to 'apt-get install ${missing[*]}'."
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  say "installing ${missing[*]} with apt"
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 ||
    die "could not install ${missing[*]} with apt-get (no root rights or no network to the Debian mirror)."
}

# bwrap with the checkout, the data directory, /tmp and the pip cache visible inside.
enter_root() { # $1: root dir; rest: command
  local rdir=$1; shift
  mkdir -p "$pip_cache"
  local args=(--bind "$rdir" / --dev /dev --proc /proc --bind /tmp /tmp
    --ro-bind /etc/resolv.conf /etc/resolv.conf
    --bind "$checkout" "$checkout" --bind "$pip_cache" /root/.cache/pip
    --die-with-parent --clearenv
    --setenv HOME /root --setenv LANG C.UTF-8
    --setenv PATH /opt/venv/bin:/opt/tools/bin:/usr/sbin:/usr/bin:/sbin:/bin
    --setenv TAGGER_TOOLS_PYTHON /opt/tools/bin/python
    --setenv TAGGER_APP_PYTHON /opt/app/bin/python
    --setenv PIP_CACHE_DIR /root/.cache/pip --setenv PYTHONPATH "$checkout"
    --setenv TF_USE_LEGACY_KERAS 1
    --setenv TF_CPP_MIN_LOG_LEVEL 2)
  # Pass through the project's own settings (TAGGER_*), CI and TERM.
  local name
  while IFS= read -r name; do
    args+=(--setenv "$name" "${!name}")
  done < <(compgen -e | grep -E '^(TAGGER_[A-Z0-9_]+|CI|TERM|PYTEST_ADDOPTS)$' || true)
  # Make the data directory (and anything else named in TAGGER_*_DIR) visible at its path.
  local d
  for name in $(compgen -e | grep -E '^TAGGER_[A-Z0-9_]*DIR$' || true); do
    d=${!name}
    case "$d" in /*) ;; *) d="$PWD/$d" ;; esac
    if [ -d "$d" ]; then d=$(cd "$d" && pwd -P); args+=(--bind "$d" "$d"); fi
  done
  local default_data="$checkout/../shared/data"
  if [ -d "$default_data" ]; then d=$(cd "$default_data" && pwd -P); args+=(--ro-bind "$d" "$d"); fi
  bwrap "${args[@]}" --chdir "$PWD" "$@"
}

build_root() {
  need_tools; check_disk; check_network
  local tmp="$cache/root-$key.partial"
  rm -rf "$tmp"
  say "building Debian trixie root in $tmp (first build: about 10 minutes, 3-4 GB)"
  say "step 1/5: debootstrap trixie"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    trixie "$tmp" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
    die "debootstrap failed (log: $cache/debootstrap.log); is the Debian mirror reachable and is there disk space?"
  # The host's CA bundle may hold a proxy's certificate that pip needs to reach the index.
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$tmp/root/.cache/pip" "$pip_cache"
  say "step 2/5: apt-get install $(grep -v '^#' "$root_packages" | tr '\n' ' ')"
  enter_root "$tmp" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(grep -v '^#' "$root_packages" | tr '\n' ' ')" \
    >"$cache/apt.log" 2>&1 || die "apt-get inside the root failed (log: $cache/apt.log)."
  say "step 3/5: pip install -r requirements.lock into /opt/venv"
  enter_root "$tmp" python3 -m venv /opt/venv
  pip_install_lock enter_root "$tmp" /opt/venv/bin/python
  say "step 4/5: pip install -r builder/deploy-tools.lock into /opt/tools"
  enter_root "$tmp" python3 -m venv /opt/tools
  pip_install_tools enter_root "$tmp" /opt/tools/bin/python
  say "step 5/5: pip install -r serving/requirements.lock into /opt/app"
  build_root_app "$tmp"
  rm -rf "$root_dir"
  mv "$tmp" "$root_dir"
  # Old roots are keyed by old locks and nothing will use them again.
  find "$cache" -maxdepth 1 -name 'root-*' ! -name "root-$key" -exec rm -rf {} + 2>/dev/null || true
  say "builder root ready: $root_dir"
}

# The app's virtualenv inside the root, /opt/app, rebuilt when serving/requirements.lock
# changes (its hash is kept beside it).
build_root_app() { # $1: root dir (default: the finished root)
  local rdir=${1:-$root_dir}
  say "building the app's virtualenv /opt/app from serving/requirements.lock"
  rm -rf "$rdir/opt/app"
  enter_root "$rdir" python3 -m venv /opt/app
  pip_install_app enter_root "$rdir" /opt/app/bin/python
  echo "$app_key" >"$rdir/opt/app/.key"
}

ensure() {
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9 # two make runs at once must not build the same environment twice
  if host_can_use_venv; then
    [ -f "$venv_dir/.complete" ] || build_venv
    [ -f "$app_dir/.complete" ] || { check_network; build_app_venv; }
  else
    [ -d "$root_dir" ] || build_root
    [ "$(cat "$root_dir/opt/app/.key" 2>/dev/null)" = "$app_key" ] || { check_network; build_root_app; }
  fi
  flock -u 9
}

run() {
  ensure
  if host_can_use_venv; then
    PATH="$venv_dir/bin:$tools_dir/bin:$PATH" PYTHONPATH="$checkout" TAGGER_TOOLS_PYTHON="$tools_dir/bin/python" \
      TAGGER_APP_PYTHON="$app_dir/bin/python" \
      TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 exec "$@"
  else
    enter_root "$root_dir" "$@"
  fi
}

case "${1:-}" in
  ensure) ensure ;;
  run) shift; [ $# -gt 0 ] || die "usage: builder/env.sh run COMMAND [ARGS...]"; run "$@" ;;
  where) if host_can_use_venv; then echo "$venv_dir"; else echo "$root_dir"; fi ;;
  # The app's interpreter, as commands run by `builder/env.sh run` see it.
  app-python) if host_can_use_venv; then echo "$app_dir/bin/python"; else echo /opt/app/bin/python; fi ;;
  *) die "usage: builder/env.sh {ensure|run COMMAND...|where|app-python}" ;;
esac
