#!/usr/bin/env bash
# Attach a container (a network namespace) to this node's share of an overlay network,
# as a CNI plugin would: a bridge holding the share's gateway, and a veth pair into the
# container with an address from the share and a default route through the gateway.
# hawser routes the share's subnet to this node on every other node; this script only
# plugs the container in.
#
# usage: attach.sh NETWORK CONTAINER_NETNS INDEX [ADMIN]
#   NETWORK          the overlay network's name (as given to `hawser agent --overlay`)
#   CONTAINER_NETNS  a namespace made with `ip netns add`
#   INDEX            which address of the node's subnet (1 = the first after the gateway)
#   ADMIN            the agent's admin API [default: 127.0.0.1:7601]
# environment:
#   HAWSER      the hawser program [default: hawser]
#   HOST_NETNS  run the host's side in this namespace (when "hosts" are namespaces, as
#               in the README's walk-through and the tests)
#   HAWSER_TOKEN_FILE  the admin token file, if the API needs one
# needs: ip (iproute2), jq.
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  sed -n '7,12p' "$0" >&2
  exit 2
fi
net=$1 ctr=$2 index=$3 admin=${4:-127.0.0.1:7601}

host() {
  if [ -n "${HOST_NETNS:-}" ]; then ip netns exec "$HOST_NETNS" "$@"; else "$@"; fi
}
die() { echo "attach.sh: $*" >&2; exit 1; }

token=()
[ -n "${HAWSER_TOKEN_FILE:-}" ] && token=(--token-file "$HAWSER_TOKEN_FILE")
doc=$(host "${HAWSER:-hawser}" network list --json --admin "$admin" "${token[@]}") \
  || die "cannot read the networks from the agent at $admin"
field() { jq -r --arg n "$net" ".networks[] | select(.name == \$n) | .$1" <<<"$doc"; }
subnet=$(field node_subnet)
[ -n "$subnet" ] || die "the agent is not part of a network named $net"
[ "$subnet" != null ] || die "this node holds no subnet of $net yet (it is claiming one): retry"
gateway=$(field gateway) mtu=$(field mtu) vni=$(field vni)
len=${subnet#*/}

# The INDEX-th address after the gateway, in IPv4 arithmetic.
to_int() { local IFS=.; read -r a b c d <<<"$1"; echo $(( (a << 24) | (b << 16) | (c << 8) | d )); }
to_ip() { echo "$(( $1 >> 24 & 255 )).$(( $1 >> 16 & 255 )).$(( $1 >> 8 & 255 )).$(( $1 & 255 ))"; }
size=$(( 1 << (32 - len) ))
(( index >= 1 && index < size - 2 )) || die "index $index: use 1 to $(( size - 3 )) in $subnet"
addr=$(to_ip $(( $(to_int "$gateway") + index )))

# The host side: one bridge per network holding the gateway, and forwarding on.
bridge=hwbr$vni
if ! host ip link show "$bridge" >/dev/null 2>&1; then
  host ip link add "$bridge" type bridge
fi
host ip link set "$bridge" mtu "$mtu" up
host ip addr replace "$gateway/$len" dev "$bridge"
host sysctl -qw net.ipv4.ip_forward=1

# The container side: eth0 with its address and a default route via the gateway.
veth=h${vni}x$index
host ip link add "$veth" mtu "$mtu" type veth peer name eth0 netns "$ctr" mtu "$mtu"
host ip link set "$veth" master "$bridge" up
ip -n "$ctr" link set lo up
ip -n "$ctr" addr add "$addr/$len" dev eth0
ip -n "$ctr" link set eth0 up
ip -n "$ctr" route add default via "$gateway"
echo "$ctr: $addr/$len via $gateway on $net"
