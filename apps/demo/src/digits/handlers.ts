// PLACEHOLDER written by demo-core; demo-digits replaces this file
import type { Handler } from '../protocol';

/** The digits panel's worker handlers (sampling, inpainting MNIST digits), merged into the worker's table. */
export const digitsHandlers: Record<string, Handler> = {};
