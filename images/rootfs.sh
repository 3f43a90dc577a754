#!/bin/sh
# rootfs OUT FILE...: copies each program FILE into OUT with every shared library it
# loads (as ldd resolves them) and the dynamic loader, at the paths they have here,
# then adds what a non-root program needs from /etc. The final stage of each image is
# `FROM scratch` plus OUT: no shell, no package manager, nothing that is not run.
set -eu
out=$1
shift
mkdir -p "$out/etc" "$out/tmp" "$out/usr/lib/x86_64-linux-gnu" "$out/usr/lib64" "$out/usr/bin"
chmod 1777 "$out/tmp"
# merged /usr, as in Debian itself
for d in lib lib64 bin sbin; do [ -e "$out/$d" ] || ln -s "usr/$d" "$out/$d"; done
mkdir -p "$out/usr/sbin"
copy() { # copy PATH: the file PATH resolves to, and PATH itself as a link to it
  real=$(readlink -f "$1")
  mkdir -p "$out$(dirname "$real")"
  cp -a "$real" "$out$real"
  case "$1" in /lib/*|/lib64/*|/bin/*|/sbin/*) link=/usr$1 ;; *) link=$1 ;; esac
  if [ "$link" != "$real" ] && [ ! -e "$out$link" ]; then
    mkdir -p "$out$(dirname "$link")"
    ln -s "$real" "$out$link"
  fi
}
for f in "$@"; do
  copy "$f"
  # "libx.so => /path (addr)", or "/lib64/ld-linux-x86-64.so.2 (addr)"; not "linux-vdso.so.1 (addr)"
  ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
    while read -r lib; do copy "$lib"; done
done
: >"$out/etc/ld.so.conf"
ldconfig -r "$out"
cat >"$out/etc/passwd" <<'P'
root:x:0:0:root:/root:/nonexistent
monero:x:1000:1000:monero:/tmp:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
P
cat >"$out/etc/group" <<'G'
root:x:0:
monero:x:1000:
nogroup:x:65534:
G
echo 'hosts: files dns' >"$out/etc/nsswitch.conf"
