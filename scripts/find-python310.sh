#!/usr/bin/env bash
# Print the path of a working Python 3.10 (Rasa 3.6 needs 3.10): PATH first, then pyenv.
# A pyenv shim on PATH may exist without 3.10 being selected, so each candidate is run.
set -u
candidates=()
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  candidates+=("$root"/versions/3.10*/bin/python3.10)
fi
candidates+=("$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10)
for candidate in "${candidates[@]}"; do
  if [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
    echo "$candidate"
    exit 0
  fi
done
echo "No Python 3.10 found (Rasa 3.6 needs exactly 3.10). Install one, e.g. 'pyenv install 3.10.13', or put python3.10 on PATH." >&2
exit 1
