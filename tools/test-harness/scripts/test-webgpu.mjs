// Runs the Node WebGPU suites on SwiftShader's Vulkan driver when it is present (part of `npm test`).
// Only suites written for WebGPU's async reads run here: Dawn in Node has no synchronous readback.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const icd = process.env.VK_ICD_FILENAMES || '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!existsSync(icd)) {
  console.log(`test:webgpu: skipped — no Vulkan driver at ${icd} (install Debian's chromium for SwiftShader)`);
  process.exit(0);
}
// Every `*.webgpu.test.ts` under packages/*/test, apps/*/test and tools/*/test runs here (and only here: the main
// vitest run excludes them), beside the two suites that check WebGPU support itself.
const webgpuFiles = [];
for (const top of ['packages', 'apps', 'tools']) {
  for (const pkg of readdirSync(top)) {
    const dir = join(top, pkg, 'test');
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir, { recursive: true })) {
      if (String(f).endsWith('.webgpu.test.ts')) webgpuFiles.push(join(dir, String(f)));
    }
  }
}
const r = spawnSync(
  'npx',
  ['vitest', 'run', 'packages/backend-node', 'tools/test-harness/test/harness.test.ts', ...webgpuFiles],
  {
    stdio: 'inherit',
    env: { ...process.env, SBM_TEST_WEBGPU: '1', VK_ICD_FILENAMES: icd },
  },
);
process.exit(r.status ?? 1);
