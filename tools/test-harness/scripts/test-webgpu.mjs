// Runs the Node WebGPU suites on SwiftShader's Vulkan driver when it is present (part of `npm test`).
// Only suites written for WebGPU's async reads run here: Dawn in Node has no synchronous readback.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const icd = process.env.VK_ICD_FILENAMES || '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!existsSync(icd)) {
  console.log(`test:webgpu: skipped — no Vulkan driver at ${icd} (install Debian's chromium for SwiftShader)`);
  process.exit(0);
}
const r = spawnSync('npx', ['vitest', 'run', 'packages/backend-node', 'tools/test-harness'], {
  stdio: 'inherit',
  env: { ...process.env, SBM_TEST_WEBGPU: '1', VK_ICD_FILENAMES: icd },
});
process.exit(r.status ?? 1);
