#!/bin/bash
# Installs the Debian packages the lab needs, if any is missing. Used by `npm run rehearse`
# and by CI. Services are kept from starting in the machine's own namespaces: the lab
# starts them inside its hosts.
set -euo pipefail
packages=(
    openssh-server openssh-client iproute2 iputils-ping iptables ufw netcat-openbsd procps psmisc util-linux
    tinc mariadb-server mariadb-client postgresql redis-server stunnel4 haproxy socat python3 python3-pymysql python3-psycopg2 rclone shellcheck nginx-light sudo cloud-init
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "lab packages: all ${#packages[@]} present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "lab packages missing: ${missing[*]}; run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
command -v apt-get >/dev/null || { echo "lab packages missing (${missing[*]}) and this is not a Debian-like system (no apt-get)" >&2; exit 1; }
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
echo "lab packages: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "lab packages: installed ${#missing[@]}"
