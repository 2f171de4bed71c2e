# shellcheck shell=bash
# Sourced by every project script that runs Python (directly or through a
# test or benchmark): the project's Python tools need the interpreter for which
# setup.sh installs Debian's python3-* packages (matplotlib), /usr/bin/python3.
# A machine may put another python3 first on PATH (pyenv, a venv) that lacks
# them; /usr/bin goes first so that `python3` and `#!/usr/bin/env python3` are
# Debian's. Idempotent.
VSW_PYTHON=/usr/bin/python3
case ":$PATH:" in
  ":/usr/bin:"*) ;;
  *) PATH="/usr/bin:$PATH" ;;
esac
export PATH VSW_PYTHON
