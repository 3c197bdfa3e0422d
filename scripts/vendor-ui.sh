#!/usr/bin/env bash
# Fetch the dashboard's one vendored module again (htm 3.1.1's Preact standalone build) from the npm
# registry, and check it is the file in the repository (src/openbatch/ui/vendor/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$here/src/openbatch/ui/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent htm@3.1.1 >/dev/null && tar xzf htm-3.1.1.tgz)
cp "$work/package/preact/standalone.module.js" "$vendor/htm-preact-standalone.module.js"
cp "$work/package/LICENSE" "$vendor/htm-LICENSE"
(cd "$vendor" && grep -E '^    [0-9a-f]{64}  ' README.md | sed 's/^    //' | sha256sum -c -)
