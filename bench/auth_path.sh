#!/usr/bin/env bash
# CPU per request of the authentication and throttle path in process (see bench/auth_path.py):
#   bench/auth_path.sh                                        # per-process memory and budgets
#   CACHE_URL=redis://127.0.0.1:6379/7 bench/auth_path.sh     # shared through Redis
#   AUTH_PATH_TREE=../other-checkout bench/auth_path.sh       # that checkout's code, same data
set -euo pipefail
source "$(dirname "$0")/common.sh"
python bench/auth_path.py "$@"
