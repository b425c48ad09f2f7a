#!/usr/bin/env bash
# The JSON parser's CPU per body, in process (bench/json_parser.py): bench/json_parser.sh
source "$(dirname "$0")/common.sh"
export DJANGO_SETTINGS_MODULE=core.settings
python bench/json_parser.py "$@" 2> >(grep -v '"level"' >&2)
