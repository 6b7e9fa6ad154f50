#!/usr/bin/env bash
# build-image.sh: builds guest images into .build/images/NAME.elf.
#
#   scripts/build-image.sh NAME [NAME...]
#   scripts/build-image.sh --all          every folder in Examples/ and Tests/Guests/
#
# NAME is a folder of Swift files with an `@main` type, in Examples/ (programs
# to show) or Tests/Guests/ (fixtures for the host tests). An image is
# boot/entry.S + the kernel's assembly and C runtime + the ToroKernel Swift
# module + those files, linked at 0x200000 by boot/kernel.ld.
# Nothing is rebuilt that is up to date: the kernel part when nothing under
# Sources/ToroKernel or boot/ (nor this script, nor the list of those files,
# nor the toolchain) changed since its last build, and an image when neither
# its own folder nor the kernel part nor this script did. Runs from the
# repository root; uses only the Swift toolchain in $TORO_TOOLCHAIN (default
# /opt/swift/usr/bin); writes to $TORO_IMAGES (default .build/images).
set -euo pipefail

cd "$(dirname "$0")/.."
toolchain="${TORO_TOOLCHAIN:-/opt/swift/usr/bin}"
swiftc="$toolchain/swiftc"
clang="$toolchain/clang"
lld="$toolchain/ld.lld"

images="${TORO_IMAGES:-.build/images}"
obj="$images/obj"
kernel_obj="$obj/kernel"
support=Sources/ToroKernel/Support/include
unicode_tables="$toolchain/../lib/swift/embedded/x86_64-unknown-none-elf/libswiftUnicodeDataTables.a"

# -Osize rather than -O: Embedded Swift specialises every generic it uses into
# the image, and -Osize keeps that in check; nothing in the kernel is CPU-bound
# yet. Stack protectors would need a runtime guard symbol, so they are off.
#
# No SSE, MMX or x87 code, in Swift or C: doubles are soft-float (integer
# registers, Runtime/SoftFloat.c). KVM on the development host is kvm_pvm,
# which runs a guest that has not switched into PVM mode through KVM's
# instruction emulator, and that emulator cannot execute SSE arithmetic (the
# first `xorps` stops the VM with an emulation failure). Integer-only code runs
# on any KVM and leaves no vector state to save on interrupts. The VMM may keep
# CR4.OSFXSR set; it does no harm.
no_float=(
    -Xcc -mno-sse -Xcc -mno-mmx
    -Xcc -Xclang -Xcc -target-feature -Xcc -Xclang -Xcc +soft-float
)
swift_flags=(
    -target x86_64-unknown-none-elf
    -enable-experimental-feature Embedded
    -swift-version 6
    -wmo -parse-as-library -Osize
    -Xfrontend -disable-stack-protector
    -Xfrontend -function-sections
    "${no_float[@]}"
    -I "$support"
)
c_flags=(
    -target x86_64-unknown-none-elf
    -std=c11 -ffreestanding -fno-builtin -mno-red-zone -fno-stack-protector
    -mgeneral-regs-only
    -O2 -mcmodel=small -fno-pic -ffunction-sections -fdata-sections
    -Wall -Wextra -Werror
    -I "$support"
)

image_roots=(Examples Tests/Guests)

usage() {
    echo "usage: $0 NAME... | --all   (NAME is a folder in ${image_roots[*]})" >&2
    exit 2
}

# The folder holding image NAME.
source_dir() {
    local root
    for root in "${image_roots[@]}"; do
        if [[ -d "$root/$1" ]]; then
            echo "$root/$1"
            return
        fi
    done
    echo "build-image: no folder $1 in ${image_roots[*]}" >&2
    exit 1
}

[[ $# -gt 0 ]] || usage
names=()
if [[ "$1" == "--all" ]]; then
    for root in "${image_roots[@]}"; do
        for dir in "$root"/*/; do
            [[ -d "$dir" ]] && names+=("$(basename "$dir")")
        done
    done
else
    names=("$@")
fi
dirs=()
for name in "${names[@]}"; do
    dirs+=("$(source_dir "$name")")
done

# MARK: - The kernel, shared by every image

build_kernel() {
    rm -rf "$kernel_obj"
    mkdir -p "$kernel_obj"
    "$clang" -target x86_64-unknown-none-elf -c boot/entry.S -o "$kernel_obj/entry.o"
    local source
    # Assembly the kernel cannot write in Swift (interrupt entry stubs, descriptor loads).
    while IFS= read -r source; do
        local name="${source#Sources/ToroKernel/}"
        "$clang" -target x86_64-unknown-none-elf -c "$source" -o "$kernel_obj/${name//\//_}.o"
    done < <(find Sources/ToroKernel -name '*.S' | sort)
    while IFS= read -r source; do
        local name="${source#Sources/ToroKernel/}"
        "$clang" "${c_flags[@]}" -c "$source" -o "$kernel_obj/${name//\//_}.o"
    done < <(find Sources/ToroKernel -name '*.c' | sort)

    local swift_sources=()
    mapfile -t swift_sources < <(find Sources/ToroKernel -name '*.swift' | sort)
    # RawLayout and BuiltinModule: SpinLock keeps its value in a raw-layout cell,
    # as the standard library's Mutex does (see Sync/SpinLock.swift).
    "$swiftc" "${swift_flags[@]}" \
        -enable-experimental-feature RawLayout -enable-experimental-feature BuiltinModule \
        -module-name ToroKernel -emit-module -emit-module-path "$kernel_obj/ToroKernel.swiftmodule" \
        -c "${swift_sources[@]}" -o "$kernel_obj/ToroKernel.o"
    touch "$kernel_obj/stamp"
}

# What a build was made from besides file contents: the toolchain and the list
# of files. Modification times tell when a file changed, but not when one was
# added by an older copy, removed or renamed, nor when the toolchain changed;
# the manifest kept next to each build does.
manifest() {
    echo "toolchain $toolchain"
    find "$@" -type f | sort
}

# True when $1 (a build's output) is missing, when its manifest $2 differs from
# the one the files $3... give now, or when one of those files, or this script,
# is newer than $1.
stale() {
    local output="$1" recorded="$2"
    shift 2
    [[ -f "$output" && -f "$recorded" ]] || return 0
    [[ "$(manifest "$@")" == "$(cat "$recorded")" ]] || return 0
    [[ -n "$(find "$@" "$0" -newer "$output" -type f -print -quit)" ]]
}

kernel_inputs=(Sources/ToroKernel boot)
if stale "$kernel_obj/stamp" "$kernel_obj/manifest" "${kernel_inputs[@]}"; then
    build_kernel
    manifest "${kernel_inputs[@]}" >"$kernel_obj/manifest"
fi

# MARK: - The images

build_image() {
    local name="$1" dir="$2"
    local app_obj="$obj/$name"
    mkdir -p "$app_obj"
    local app_sources=()
    mapfile -t app_sources < <(find "$dir" -name '*.swift' | sort)
    "$swiftc" "${swift_flags[@]}" -I "$kernel_obj" \
        -module-name "$name" -c "${app_sources[@]}" -o "$app_obj/$name.o"
    "$lld" -T boot/kernel.ld -nostdlib -static --gc-sections -z max-page-size=4096 -z noexecstack \
        -o "$images/$name.elf" "$kernel_obj"/*.o "$app_obj/$name.o" "$unicode_tables"
    local size
    size=$(stat -c %s "$images/$name.elf")
    echo "built $images/$name.elf from $dir ($((size / 1024)) KiB)"
}

# An image is up to date when its ELF is newer than its folder's files, this
# script and the kernel part's stamp (which every kernel build renews), and its
# folder still holds the files it was built from.
needs_build() {
    local name="$1" dir="$2" elf="$images/$1.elf"
    stale "$elf" "$obj/$name/manifest" "$dir" && return 0
    [[ "$kernel_obj/stamp" -nt "$elf" ]]
}

# Images are independent once the kernel is built: compile them in parallel.
pids=()
built=()
for index in "${!names[@]}"; do
    name="${names[$index]}" dir="${dirs[$index]}"
    needs_build "$name" "$dir" || continue
    # A failed build must not leave an ELF that looks up to date.
    rm -f "$images/$name.elf" "$obj/$name/manifest"
    (build_image "$name" "$dir" && manifest "$dir" >"$obj/$name/manifest") &
    pids+=($!)
    built+=("$name")
done
failed=0
for index in "${!pids[@]}"; do
    if ! wait "${pids[$index]}"; then
        echo "build-image: ${built[$index]} failed" >&2
        failed=1
    fi
done
if [[ ${#built[@]} -lt ${#names[@]} ]]; then
    echo "build-image: $((${#names[@]} - ${#built[@]})) of ${#names[@]} images up to date"
fi
exit "$failed"
