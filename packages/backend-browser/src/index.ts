export { initBackend, registerBrowserBackends, BROWSER_BACKENDS, BROWSER_PRIORITIES } from './init';
export type { InitBrowserBackendOptions, BrowserBackendOptions, BrowserBackendName } from './init';
export type { BrowserWasmOptions } from './wasm';
export { BrowserCheckpointStorage, browserStorage, checkpointUrl } from './storage';
export { CanvasImageOutput, canvasImageOutput, toImageData, drawToCanvas } from './image';
export type { ModuleLoader } from './load';
