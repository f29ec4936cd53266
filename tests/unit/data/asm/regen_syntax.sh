#!/usr/bin/env bash
# Regenerate syntax/*.hex: the .text bytes llvm-mc-19 assembles each syntax/*.s program to,
# one 8-byte slot a line in hex (little-endian, as in the object file). These programs cover
# the assembler syntax that needs more than one line (labels, .rept, raw words); the tests
# only read the result. Run by hand whenever a .s file changes:
#
#     tests/unit/data/asm/regen_syntax.sh            # needs llvm-mc-19 and llvm-objcopy-19
set -euo pipefail
cd "$(dirname "$0")/syntax"
MC=${LLVM_MC:-llvm-mc-19}
OBJCOPY=${LLVM_OBJCOPY:-llvm-objcopy-19}
READELF=${LLVM_READELF:-llvm-readelf-19}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=$("$MC" --version | grep -o 'LLVM version [0-9.]*')
for src in *.s; do
  name=${src%.s}
  "$MC" -triple=bpfel -mcpu=v4 -filetype=obj "$src" -o "$tmp/$name.o"
  if "$READELF" -r "$tmp/$name.o" | grep -q 'Relocation section'; then
    echo "$src: llvm left relocations; the test programs must be self-contained" >&2
    exit 1
  fi
  "$OBJCOPY" -O binary --only-section=.text "$tmp/$name.o" "$tmp/$name.bin"
  {
    echo "# $src assembled by llvm-mc-19 ($version) -triple=bpfel -mcpu=v4: one slot a line"
    od -An -v -tx1 -w8 "$tmp/$name.bin" | tr -d ' '
  } > "$name.hex"
  echo "wrote $name.hex ($(($(stat -c %s "$tmp/$name.bin") / 8)) slots)"
done
