#!/usr/bin/env bash
# build-images.sh: builds every image (Examples/ and Tests/Guests/) into .build/images/NAME.elf.
set -euo pipefail
exec "$(dirname "$0")/build-image.sh" --all
