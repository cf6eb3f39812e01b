#!/usr/bin/env bash
# Builds and runs the Swift demangler benchmark: our Rust crate against Swift's C++
# demangler (swift-demangler crate, needs a C++ compiler), same corpus, same run.
set -euo pipefail
cd "$(dirname "$0")"
# swift-demangler builds the vendored C++ with cmake.
if ! command -v cmake >/dev/null; then
  echo "installing cmake (needed by swift-demangler)" >&2
  sudo -n apt-get install -y cmake >&2 || apt-get install -y cmake >&2
fi
cargo build --release --quiet
exec ./target/release/swift-demangle-bench "$@"
