import * as tf from '@tensorflow/tfjs';
import { unavailable } from './load';

const SOFTWARE = /swiftshader|llvmpipe|software|basic render/i;

export interface WebglDescription {
  renderer: string;
  software: boolean;
  float32: boolean;
  version: number;
}

function rendererName(): string {
  try {
    const canvas =
      typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(1, 1) : globalThis.document?.createElement('canvas');
    const gl = canvas?.getContext('webgl2') ?? canvas?.getContext('webgl');
    if (!gl) return '';
    const g = gl as WebGLRenderingContext;
    const ext = g.getExtension('WEBGL_debug_renderer_info');
    return String(g.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : g.RENDERER) ?? '');
  } catch {
    return '';
  }
}

/** tfjs's WebGL backend (bundled with @tensorflow/tfjs). Automatic selection skips software rasterisers. */
export async function initWebgl(explicit: boolean): Promise<WebglDescription> {
  if (!tf.findBackendFactory('webgl')) throw unavailable('tfjs has no webgl backend in this build');
  const renderer = rendererName();
  if (!renderer) throw unavailable('WebGL is not available (no webgl2/webgl context)');
  const software = SOFTWARE.test(renderer);
  if (software && !explicit) {
    throw unavailable(
      `only a software WebGL renderer (${renderer}), slower than wasm; ask for 'webgl' to use it anyway`,
    );
  }
  if (!(await tf.setBackend('webgl'))) throw unavailable(`tfjs could not start WebGL on ${renderer}`);
  await tf.ready();
  return {
    renderer,
    software,
    float32: tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED'),
    version: tf.env().getNumber('WEBGL_VERSION'),
  };
}
