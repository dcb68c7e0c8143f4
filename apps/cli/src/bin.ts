import { installSignalHandlers } from './signals';

// The entry is this small module so that the stop signals are handled before tfjs and the sbm packages load (about
// a second): static imports would all be evaluated first.
installSignalHandlers();
await import('./cli');
