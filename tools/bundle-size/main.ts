// The smallest useful sbm app: pick a browser backend, sample a 2-D standard Gaussian with the PC sampler under
// the VP SDE. What `npm run bench -- bundle` bundles to see what an app pays for sbm on top of tfjs.
import { neg } from '@tensorflow/tfjs';
import { initBackend } from '@sbm/backend-browser';
import { createSde } from '@sbm/sde';
import { sample } from '@sbm/samplers';

const backend = await initBackend({ backend: 'cpu' });
const sde = createSde('vp');
// N(0, I) is the VP SDE's stationary law, so its perturbed score is −x at every t.
const { samples } = await sample({ sampler: 'pc', sde, score: (x) => neg(x), shape: [256, 2], seed: 0 });
document.getElementById('out')!.textContent = `${backend.name}: ${samples.shape.join('×')} samples`;
samples.dispose();
