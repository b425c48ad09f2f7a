#!/usr/bin/env bash
# Each middleware's CPU per request, in process (bench/middleware_cost.py): bench/middleware_cost.sh [PATH]
source "$(dirname "$0")/common.sh"
export DJANGO_SETTINGS_MODULE=core.settings
python bench/middleware_cost.py "$@" 2> >(grep -v '"level"' >&2)
