#!/usr/bin/env bash
# Installs what building and testing Meridian needs on Debian, if missing.
# Safe to run repeatedly: it only calls apt-get when a package is absent.
set -euo pipefail

packages=(cmake make gcc pkg-config clang-format librocksdb-dev libmicrohttpd-dev libcjson-dev
          libcmocka-dev libssl-dev zlib1g-dev libcurl4-openssl-dev libhttp-parser-dev
          clang libclang-rt-14-dev valgrind patch)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Real clients for the integration tests: boto3 and the aws cli. Use the
# machine's python3 if it has them, else Debian's packages for /usr/bin/python3.
if ! python3 -c 'import boto3' >/dev/null 2>&1; then
    missing+=(python3-boto3)
fi
if ! command -v aws >/dev/null 2>&1; then
    missing+=(awscli)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
