// Runs inside headless Chromium (bundled by chromium.test.ts): exercises @sbm/backend-browser for real and leaves
// a JSON report on window.__sbmResult.
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BrowserBackendName } from '@sbm/backend-browser';

interface Report {
  backend: string;
  tfBackend: string;
  reason: string;
  matmul: number[];
  leaked: number;
  idbWeightsEqual?: boolean;
  idbExists?: boolean;
  sideFile?: string;
  missingCode?: string;
  png?: number[];
  error?: string;
}

async function run(name: BrowserBackendName | 'auto'): Promise<Report> {
  const lines: string[] = [];
  const b = await initBackend({ backend: name, log: (l) => lines.push(l), wasmPaths: './' });
  const before = tf.memory().numTensors;
  const y = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
  const matmul = Array.from(await y.data());
  y.dispose();
  const report: Report = {
    backend: b.name,
    tfBackend: tf.getBackend(),
    reason: lines.join(' | '),
    matmul,
    leaked: tf.memory().numTensors - before,
  };
  if (name === 'auto' || name === 'wasm') {
    // IndexedDB round trip of a small layers model through the adapter's storage.
    const model = tf.sequential();
    model.add(
      tf.layers.dense({ units: 3, inputShape: [2], kernelInitializer: tf.initializers.randomNormal({ seed: 7 }) }),
    );
    const url = `indexeddb://sbm-test-${name}`;
    await model.save(b.storage!.handler(url));
    const loaded = await tf.loadLayersModel(b.storage!.handler(url));
    const w1 = await Promise.all(model.getWeights().map((w) => w.data()));
    const w2 = await Promise.all(loaded.getWeights().map((w) => w.data()));
    report.idbWeightsEqual =
      JSON.stringify(w1.map((a) => Array.from(a))) === JSON.stringify(w2.map((a) => Array.from(a)));
    report.idbExists = await b.storage!.exists(url);
    await b.storage!.writeFile(url, 'config.json', '{"sde":"vp"}');
    report.sideFile = new TextDecoder().decode(await b.storage!.readFile(url, 'config.json'));
    report.missingCode = await b.storage!.handler('indexeddb://never-saved').load!().then(
      () => 'none',
      (e: { code?: string }) => e.code ?? 'no code',
    );
    model.dispose();
    loaded.dispose();

    // PNG through the browser's encoder, decoded again by the browser.
    const pixels = Uint8Array.from([0, 50, 100, 150, 200, 250]); // 3×2 gray
    const png = await b.images!.encodePng(pixels, 3, 2, 1);
    const bmp = await createImageBitmap(new Blob([png.slice()], { type: 'image/png' }));
    const c = new OffscreenCanvas(3, 2);
    const ctx = c.getContext('2d')!;
    ctx.drawImage(bmp, 0, 0);
    const rgba = ctx.getImageData(0, 0, 3, 2).data;
    report.png = Array.from(rgba.filter((_, i) => i % 4 === 0)); // red channel = the gray level
  }
  return report;
}

async function main(): Promise<void> {
  const wanted = (new URLSearchParams(location.search).get('backends') ?? 'auto,wasm,cpu').split(',');
  const out: Record<string, Report | { error: string }> = {};
  for (const name of wanted) {
    try {
      out[name] = await run(name as BrowserBackendName | 'auto');
    } catch (e) {
      out[name] = { error: `${(e as { code?: string }).code ?? ''} ${(e as Error).message}` };
    }
  }
  (window as unknown as { __sbmResult: unknown }).__sbmResult = out;
}

void main();
