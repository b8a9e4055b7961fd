#!/usr/bin/env bash
# Install the Debian packages the local stack needs, only those that are missing.
# Used by `make setup` (and so by the demo and the tests); safe to run again.
set -euo pipefail

need=()
command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ] || need+=(orthanc)
ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so >/dev/null 2>&1 || need+=(orthanc-dicomweb)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
# npm: the OHIF viewer package and newman (the Postman collection's runner)
command -v npm >/dev/null 2>&1 || need+=(npm)
# DCMTK (dsr2xml, and the DIMSE tools findscu/movescu/storescu/dcmqrscp) and dicom3tools
# (dciodvfy): independent checkers of the DICOM documents we write
command -v dsr2xml >/dev/null 2>&1 || need+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
if [ "${BRIDGE_WITH_BROWSER:-0}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# the Debian orthanc package starts a system service on port 8042; our stack runs its own
# instances on free ports, so the system one is stopped to keep the machine quiet
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop orthanc 2>/dev/null || true; fi
pkill -f '^/usr/sbin/Orthanc /etc/orthanc' 2>/dev/null || true
