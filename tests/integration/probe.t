#!/usr/bin/env bash
# turtled --probe on this very machine: valid JSON through the api/ model, and
# a backend that agrees with what the host shows.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh

turtled="$TURTLES_BUILD/turtled"
[ -x "$turtled" ] || bail "$turtled is not built"
plan 7

out=$("$turtled" --probe)
ok $? "turtled --probe exits 0"
echo "$out" | jq -e . >/dev/null
ok $? "its output is JSON"

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has_virt=no
case " $flags " in *" vmx "* | *" svm "*) has_virt=yes ;; esac
backend=$(echo "$out" | jq -r .backend)
reason=$(echo "$out" | jq -r .reason)
if [ "$has_virt" = no ]; then
    is "$backend" tcg "no vmx/svm in /proc/cpuinfo gives backend tcg"
    case "$reason" in *vmx*svm* | *svm*vmx*) r=0 ;; *) r=1 ;; esac
    ok $r "the reason names the missing vmx/svm: $reason"
else
    case "$backend" in kvm | tcg) r=0 ;; *) r=1 ;; esac
    ok $r "a host with vmx/svm gives kvm or tcg ($backend)"
    ok 0 "the reason is given: $reason"
fi
if [ -d /sys/module/kvm_pvm ]; then
    case "$reason" in *kvm_pvm*) r=0 ;; *) r=1 ;; esac
    ok $r "kvm_pvm is loaded and the reason says so"
    is "$(echo "$out" | jq -r .kvm.pvm)" true "kvm.pvm is true"
else
    is "$(echo "$out" | jq -r .kvm.pvm)" false "kvm.pvm is false without kvm_pvm"
    ok 0 "no kvm_pvm to name"
fi
is "$(echo "$out" | jq -r .kvm.device)" "$([ -e /dev/kvm ] && echo true || echo false)" \
    "kvm.device matches /dev/kvm"
