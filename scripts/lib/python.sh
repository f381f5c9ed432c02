# shellcheck shell=bash
# Python packages for the project's scripts (scripts/test, scripts/demo), in one place.
#
#   source scripts/lib/python.sh
#   ensure_py_pkg onnxruntime==1.31.1                          # import name = package name
#   ensure_py_pkg prometheus-client==0.26.0 prometheus_client   # when they differ
#
# Where packages go:
# * an active virtualenv ($VIRTUAL_ENV) or the repository's `.venv/` if it exists: there;
# * else a Python that is not "externally managed" (pyenv, a self-built one, CI images):
#   into it, as before;
# * else (Debian/Ubuntu's system Python refuses `pip install`, PEP 668): into a new `.venv/`
#   at the repository root (gitignored).
# Whenever a virtualenv is used it is activated for the rest of the calling script
# (VIRTUAL_ENV and PATH exported), so the tests' `python3` and the agent's search for ONNX
# Runtime (src/classify/runtime.rs reads $VIRTUAL_ENV's site-packages) both find it.
# Installs are quiet (no progress bar, no version nag); pip's own errors still show.

# pip as root: no "running pip as the root user" warning on every install.
export PIP_ROOT_USER_ACTION=ignore

_PY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

_py_activate() {
  export VIRTUAL_ENV="$1"
  case ":$PATH:" in
    *":$VIRTUAL_ENV/bin:"*) ;;
    *) export PATH="$VIRTUAL_ENV/bin:$PATH" ;;
  esac
}

_py_externally_managed() {
  python3 - <<'PY' >/dev/null 2>&1
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)
PY
}

# Pick (and if need be make) the Python that packages go into; once per script.
ensure_py_env() {
  [ -n "${_PY_ENV_DONE:-}" ] && return 0
  _PY_ENV_DONE=1
  if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is missing: install Python 3 (Debian: apt-get install python3 python3-venv)" >&2
    return 1
  fi
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    _py_activate "$VIRTUAL_ENV"
  elif [ -x "$_PY_ROOT/.venv/bin/python3" ]; then
    _py_activate "$_PY_ROOT/.venv"
  elif _py_externally_managed; then
    echo "== the system Python is externally managed (PEP 668): creating a virtualenv in .venv/"
    if ! python3 -m venv "$_PY_ROOT/.venv" >/dev/null 2>&1; then
      rm -rf "$_PY_ROOT/.venv"
      echo "cannot create .venv/: Debian's python3 needs the python3-venv package" >&2
      echo "  (as root: apt-get install -y python3-venv), or activate a virtualenv of your own" >&2
      return 1
    fi
    _py_activate "$_PY_ROOT/.venv"
  fi
}

# ensure_py_pkg SPEC [IMPORT_NAME]: install SPEC (e.g. onnxruntime==1.31.1) unless the
# chosen Python can already import it.
ensure_py_pkg() {
  local spec="$1"
  local name="${spec%%[=<>!~ ]*}"
  local module="${2:-${name//-/_}}"
  ensure_py_env || return 1
  if python3 -c "import $module" >/dev/null 2>&1; then
    return 0
  fi
  echo "== installing $spec from PyPI${VIRTUAL_ENV:+ into $VIRTUAL_ENV}"
  python3 -m pip install --quiet --disable-pip-version-check --no-input --progress-bar off "$spec"
}
