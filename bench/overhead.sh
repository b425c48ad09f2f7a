#!/usr/bin/env bash
# In-process aggregate time against the same SQL through the drivers: bench/overhead.sh [--runs N]
source "$(dirname "$0")/common.sh"
python bench/overhead.py "$@"
