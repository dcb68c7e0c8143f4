import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { exportScoreSde, importScoreSde, type ReferenceConfig } from '@sbm/interop';

// Debian's python3-torch lives under /usr/bin/python3; the python3 on PATH may be another one without torch.
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
const missing =
  probe.error || probe.status !== 0
    ? `${PYTHON} with torch is missing (${probe.error?.message ?? probe.stderr.trim().split('\n').pop()})`
    : undefined;

const fixture = fileURLToPath(new URL('./fixtures/ve-ncsnpp/', import.meta.url));

/**
 * Reads the exported file with a pure-python safetensors reader (8-byte header length, JSON header, raw
 * little-endian bytes) and compares it with the reference checkpoint's own state dict, as torch.load gives it:
 * what `model.load_state_dict(...)` (strict) checks, key for key — names, shapes, dtypes — plus the values.
 */
const SCRIPT = String.raw`
import json, struct, sys, torch
exported, ckpt = sys.argv[1], sys.argv[2]
raw = open(exported, 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n].decode('utf8'))
meta = header.pop('__metadata__', {})
body = raw[8 + n:]
dtypes = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I64': torch.int64}
tensors = {}
for name, h in header.items():
    a, b = h['data_offsets']
    t = torch.frombuffer(bytearray(body[a:b]), dtype=dtypes[h['dtype']]) if b > a else torch.empty(0, dtype=dtypes[h['dtype']])
    tensors[name] = t.reshape(h['shape'])
# torch 1.13's weights_only unpickler refuses the optimizer's floats (BINFLOAT); the file is the repository's own fixture.
state = torch.load(ckpt, map_location='cpu')['model']
state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
common = [k for k in state if k in tensors]
# load_state_dict (strict) checks names and shapes; it copies values into each buffer's own dtype.
mismatched = [k for k in common if tuple(state[k].shape) != tuple(tensors[k].shape)]
same = [k for k in common if k not in mismatched]
dtypes = {k: [str(state[k].dtype), str(tensors[k].dtype)] for k in same if state[k].dtype != tensors[k].dtype}
unequal = [k for k in same if k not in dtypes and not torch.equal(state[k], tensors[k])]
rel = {k: float(((state[k] - tensors[k].to(state[k].dtype)).abs() / state[k].abs()).max()) for k in dtypes}
# A module with the reference's state-dict tree (buffers of its shapes and dtypes) stands in for NCSNpp, whose
# code is not here: strict load_state_dict of the exported file into it, then compare with the reference.
class Holder(torch.nn.Module):
    pass
holder = Holder()
for k, v in state.items():
    *path, leaf = k.split('.')
    m = holder
    for p in path:
        if p not in m._modules:
            m.add_module(p, Holder())
        m = m._modules[p]
    m.register_buffer(leaf, torch.zeros_like(v))
holder.load_state_dict(tensors, strict=True)
loaded = holder.state_dict()
after_load = sorted(k for k in state if not torch.equal(loaded[k], state[k]))
print(json.dumps({
    'strictLoad': True, 'afterLoadUnequal': after_load,
    'torch': torch.__version__, 'metadata': meta, 'count': len(tensors), 'reference': len(state),
    'missing': sorted(set(state) - set(tensors)), 'unexpected': sorted(set(tensors) - set(state)),
    'mismatched': mismatched, 'unequal': unequal, 'dtypes': dtypes, 'castRelErr': rel,
}))
`;

const tmp = mkdtempSync(join(tmpdir(), 'sbm-torch-roundtrip-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(missing !== undefined)(
  `exportScoreSde → PyTorch (torch.load of the reference checkpoint)${missing ? ` — skipped: ${missing}` : ''}`,
  () => {
    it('the exported VE weights are the reference state dict: every key and shape, bit-equal values', async () => {
      await tf.setBackend('cpu');
      const before = tf.memory().numTensors;
      const checkpoint = new Uint8Array(readFileSync(join(fixture, 'checkpoint_5.pth')));
      const config = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8')) as ReferenceConfig & {
        state_dict_keys: number;
      };
      const { model } = importScoreSde({ checkpoint, config, weights: 'model' });
      const file = join(tmp, 'weights.safetensors');
      try {
        writeFileSync(file, exportScoreSde(model));
      } finally {
        model.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      writeFileSync(join(tmp, 'check.py'), SCRIPT);
      const r = spawnSync(PYTHON, [join(tmp, 'check.py'), file, join(fixture, 'checkpoint_5.pth')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      console.log(
        `torch ${String(out.torch)}: ${String(out.count)} exported tensors vs ${String(out.reference)} in the reference state dict`,
      );
      expect(out.missing).toEqual([]);
      expect(out.unexpected).toEqual([]);
      expect(out.mismatched).toEqual([]);
      expect(out.unequal).toEqual([]);
      // Bit-equal except the reference's float64 `sigmas` buffer (torch.tensor of numpy's get_sigmas), which the
      // export writes as float32: load_state_dict casts it back, to within float32 rounding.
      expect(out.dtypes).toEqual({ sigmas: ['torch.float64', 'torch.float32'] });
      expect((out.castRelErr as Record<string, number>).sigmas).toBeLessThan(1e-7);
      expect(out.reference).toBe(config.state_dict_keys);
      expect(out.strictLoad).toBe(true);
      expect(out.afterLoadUnequal).toEqual(['sigmas']);
      expect(out.metadata).toMatchObject({ format: 'pt' });
    }, 60_000);
  },
);
