#!/usr/bin/env bash
# Installs what the browser and WebGPU tests need on Debian/Ubuntu (CI runs as root):
#   chromium    → headless browser for packages/backend-browser/test (launched by playwright-core, which
#                 downloads no browser of its own); it also ships SwiftShader's Vulkan ICD
#                 (/usr/lib/chromium/vk_swiftshader_icd.json) for Node WebGPU tests.
#   libvulkan1  → the Vulkan loader that Dawn (npm `webgpu`) opens to reach that ICD.
# Tests that need these skip (with a reason) when they are absent, so this script is optional.
set -euo pipefail
if [ -x /usr/bin/chromium ] && ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
  echo "chromium and libvulkan1 already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium libvulkan1 >/dev/null
/usr/bin/chromium --version
