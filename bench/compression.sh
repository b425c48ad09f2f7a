#!/usr/bin/env bash
# What gzip costs the service and saves, in process (bench/compression.py): bench/compression.sh [PATH]
source "$(dirname "$0")/common.sh"
export DJANGO_SETTINGS_MODULE=core.settings
python bench/compression.py "$@" 2> >(grep -v '"level"' >&2)
