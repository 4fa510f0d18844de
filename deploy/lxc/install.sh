#!/usr/bin/env bash
# Install ReasonKit as a systemd service on Debian 12 (an LXC container, a VM or a host).
# Idempotent: run it again to upgrade; existing config and secrets are kept.
#
#   sudo deploy/lxc/install.sh                       # from this source checkout
#   sudo deploy/lxc/install.sh --wheel reasonkit-0.1.0-py3-none-any.whl
#
# What it does: installs python3-venv (apt), creates the system user and group `reasonkit`, the
# directories /opt/reasonkit (venv), /etc/reasonkit (config.toml, reasonkit.env, tokens,
# protocols/), /var/lib/reasonkit (data) and /var/log/reasonkit, installs ReasonKit into the venv,
# writes config.toml, reasonkit.env and a bearer token the first time only, installs
# reasonkit.service and the logrotate file, then enables and (re)starts the service and waits for
# /health/live.
# docs/deployment.md, "systemd and LXC", explains every step.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install.sh [options]
  --wheel FILE          install this wheel (default: the source checkout around this script)
  --source DIR          install from this source checkout
  --user NAME           service user and group (default: reasonkit)
  --host ADDR           SERVER_HOST written to a new reasonkit.env (default: 0.0.0.0)
  --port N              port of the HTTP endpoint (default: 9100)
  --venv DIR            virtual environment (default: /opt/reasonkit/venv)
  --config-dir DIR      (default: /etc/reasonkit)
  --data-dir DIR        (default: /var/lib/reasonkit)
  --log-dir DIR         (default: /var/log/reasonkit)
  --unit-dir DIR        (default: /etc/systemd/system)
  --logrotate-dir DIR   (default: /etc/logrotate.d)
  --no-apt              do not install Debian packages
  --no-start            install only; do not enable or start the service
  -h, --help            this text
USAGE
}

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/../.." && pwd)"
systemd_dir="$repo_dir/deploy/systemd"

wheel=""
source_dir=""
user="reasonkit"
host="0.0.0.0"
port="9100"
venv="/opt/reasonkit/venv"
config_dir="/etc/reasonkit"
data_dir="/var/lib/reasonkit"
log_dir="/var/log/reasonkit"
unit_dir="/etc/systemd/system"
logrotate_dir="/etc/logrotate.d"
use_apt=1
start=1

while [ $# -gt 0 ]; do
  case "$1" in
    --wheel) wheel="$2"; shift 2 ;;
    --source) source_dir="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --venv) venv="$2"; shift 2 ;;
    --config-dir) config_dir="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --log-dir) log_dir="$2"; shift 2 ;;
    --unit-dir) unit_dir="$2"; shift 2 ;;
    --logrotate-dir) logrotate_dir="$2"; shift 2 ;;
    --no-apt) use_apt=0; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (it creates a user and installs a systemd unit)"
case "$port" in ''|*[!0-9]*) die "--port must be a number, got '$port'" ;; esac
if [ -n "$wheel" ] && [ -n "$source_dir" ]; then die "give --wheel or --source, not both"; fi
if [ -n "$wheel" ]; then
  [ -f "$wheel" ] || die "wheel $wheel does not exist"
  target="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
else
  source_dir="${source_dir:-$repo_dir}"
  [ -f "$source_dir/pyproject.toml" ] || die "$source_dir is not a ReasonKit source checkout (no pyproject.toml)"
  target="$(cd "$source_dir" && pwd)"
fi
for f in reasonkit.service reasonkit.logrotate config.toml reasonkit.env.example; do
  [ -f "$systemd_dir/$f" ] || die "missing $systemd_dir/$f (run the script from a ReasonKit checkout)"
done

# 1. Debian packages: Python with venv (Debian 12: Python 3.11).
if [ "$use_apt" -eq 1 ]; then
  missing=()
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  dpkg -s python3-venv >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "ReasonKit needs Python 3.11 or newer (Debian 12 has 3.11)"

# 2. The service user and group (a system account without a login shell or home).
if ! getent group "$user" >/dev/null; then
  groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
  log "creating system user $user"
  useradd --system --gid "$user" --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin "$user"
fi

# 3. Directories: code and config belong to root, data and logs to the service user.
install -d -m 0755 "$(dirname "$venv")"
install -d -m 0750 -o root -g "$user" "$config_dir" "$config_dir/protocols"
install -d -m 0750 -o "$user" -g "$user" "$data_dir" "$log_dir"

# 4. ReasonKit in its own virtual environment (re-run: upgrade in place).
if [ ! -x "$venv/bin/python" ]; then
  log "creating virtual environment $venv"
  python3 -m venv "$venv"
fi
log "installing ReasonKit from $target"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$target"
"$venv/bin/rk" --version >/dev/null

# Rewrites the default paths of the files in deploy/systemd to the ones chosen here.
render() {
  sed -e "s#/opt/reasonkit/venv#$venv#g" \
      -e "s#/etc/reasonkit#$config_dir#g" \
      -e "s#/var/lib/reasonkit#$data_dir#g" \
      -e "s#/var/log/reasonkit#$log_dir#g" \
      -e "s#^User=reasonkit\$#User=$user#" \
      -e "s#^Group=reasonkit\$#Group=$user#" \
      -e "s#^    su reasonkit reasonkit\$#    su $user $user#" \
      -e "s#^    create 0640 reasonkit reasonkit\$#    create 0640 $user $user#" \
      -e "s#serve-mcp --port 9100\$#serve-mcp --port $port#" \
      "$1"
}

# 5. Config and secrets: written once, never overwritten (edit them in place).
if [ ! -f "$config_dir/config.toml" ]; then
  render "$systemd_dir/config.toml" > "$config_dir/config.toml.new"
  install -m 0640 -o root -g "$user" "$config_dir/config.toml.new" "$config_dir/config.toml"
  rm -f "$config_dir/config.toml.new"
  log "wrote $config_dir/config.toml"
fi
if [ ! -f "$config_dir/reasonkit.env" ]; then
  sed -e "s#^SERVER_HOST=.*#SERVER_HOST=$host#" "$systemd_dir/reasonkit.env.example" > "$config_dir/reasonkit.env.new"
  install -m 0640 -o root -g "$user" "$config_dir/reasonkit.env.new" "$config_dir/reasonkit.env"
  rm -f "$config_dir/reasonkit.env.new"
  log "wrote $config_dir/reasonkit.env: add a provider key there"
fi
if [ ! -f "$config_dir/tokens" ]; then
  (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$config_dir/tokens.new")
  install -m 0640 -o root -g "$user" "$config_dir/tokens.new" "$config_dir/tokens"
  rm -f "$config_dir/tokens.new"
  log "wrote a new bearer token to $config_dir/tokens (clients send: Authorization: Bearer <token>)"
fi
"$venv/bin/rk" --config "$config_dir/config.toml" config show >/dev/null 2>&1 \
  || die "$config_dir/config.toml is not valid: run $venv/bin/rk --config $config_dir/config.toml config show"

# 6. The unit and the logrotate file (ours: always replaced).
install -d -m 0755 "$unit_dir" "$logrotate_dir"
render "$systemd_dir/reasonkit.service" > "$unit_dir/reasonkit.service.new"
mv -f "$unit_dir/reasonkit.service.new" "$unit_dir/reasonkit.service"
chmod 0644 "$unit_dir/reasonkit.service"
render "$systemd_dir/reasonkit.logrotate" > "$logrotate_dir/reasonkit.new"
mv -f "$logrotate_dir/reasonkit.new" "$logrotate_dir/reasonkit"
chmod 0644 "$logrotate_dir/reasonkit"
log "installed $unit_dir/reasonkit.service and $logrotate_dir/reasonkit"

# 7. Enable and (re)start, then wait until it answers.
if [ "$start" -eq 0 ]; then
  log "done (not started: --no-start)"
  exit 0
fi
if [ ! -d /run/systemd/system ]; then
  log "done; systemd is not running here, so the service was not started (boot the container with systemd, then: systemctl enable --now reasonkit)"
  exit 0
fi
systemctl daemon-reload
systemctl enable --quiet reasonkit.service
systemctl restart reasonkit.service
for _ in $(seq 1 30); do
  if python3 -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/health/live', timeout=2).status == 200 else 1)" 2>/dev/null; then
    log "reasonkit is up: http://$(hostname -f 2>/dev/null || hostname):$port/mcp (token in $config_dir/tokens)"
    exit 0
  fi
  sleep 1
done
systemctl --no-pager status reasonkit.service >&2 || true
die "reasonkit did not answer on 127.0.0.1:$port/health/live within 30 s (journalctl -u reasonkit)"
