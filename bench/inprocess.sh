#!/usr/bin/env bash
# CPU per request in process, from one thread or several (bench/inprocess.py): bench/inprocess.sh PATH [--threads 4] ...
source "$(dirname "$0")/common.sh"
export DJANGO_SETTINGS_MODULE=core.settings
python bench/inprocess.py "$@" 2> >(grep -v '"level"' >&2)
