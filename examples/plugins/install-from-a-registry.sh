#!/bin/sh
# The registry round trip on one machine: publish the first-party plugins
# (built by `cargo xtask build-plugins` or `cargo xtask demo`) to ./registry,
# signed with a fresh key; install them here, pinned in sluice.lock; run
# pinned.yaml from the locked copies. Run it from this directory.
set -eu
target=${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}/release
sluice=${SLUICE:-$target/sluice}
rm -rf registry release.key sluice.lock .sluice out
public=$("$sluice" plugin keygen --out release.key | head -n 1)
for p in source-generate filter-select sink-file; do
  "$sluice" plugin publish "$target/plugins/$p.wasm" --registry registry --key release.key
done
"$sluice" plugin install generate@^0.1 select@^0.1 file@^0.1 \
  --registry registry --trusted-key "$public"
"$sluice" plugin list
"$sluice" run pinned.yaml
