/**
 * Stop signals for every command. Installed by the entry (bin.ts) before anything heavy is imported, so a signal
 * at any moment — even while tfjs loads — ends the process with the documented code (128 + the signal's number,
 * the shell convention) instead of Node's default death by signal. A command with work to save (sbm train)
 * takes the signals over while it runs.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

export const STOP_SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export const SIGNAL_EXIT: Record<StopSignal, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/** How the user probably sent it, for messages. */
export const SIGNAL_WORDS: Record<StopSignal, string> = {
  SIGINT: 'interrupted (SIGINT)',
  SIGTERM: 'terminated (SIGTERM)',
  SIGHUP: 'hung up (SIGHUP)',
};

type Handler = (signal: StopSignal) => void;
let current: Handler | undefined;
let installed = false;

function ignoreStreamErrors(): void {
  // After SIGHUP the terminal may be gone: a write to it fails with EIO / EPIPE, and an 'error' event nobody
  // listens to would crash the process in the middle of saving the checkpoint.
  for (const s of [process.stdout, process.stderr]) {
    if (s.listenerCount('error') === 0) s.on('error', () => undefined);
  }
}

function dispatch(signal: StopSignal): void {
  ignoreStreamErrors();
  if (current) current(signal);
  else process.exit(SIGNAL_EXIT[signal]);
}

export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const s of STOP_SIGNALS) process.on(s, () => dispatch(s));
}

/** Routes stop signals to `handler` until the returned function is called (then back to exit-at-once). */
export function onStopSignal(handler: Handler): () => void {
  current = handler;
  return () => {
    if (current === handler) current = undefined;
  };
}

/**
 * The usual "save, then stop" policy: the first signal aborts `ac` (the command saves and returns `code()`), a
 * second one exits at once — saves are atomic, so the checkpoint written before stays the one on disk.
 */
export class GracefulStop {
  readonly controller = new AbortController();
  private first: StopSignal | undefined;
  private readonly off: () => void;

  constructor(private readonly what: string) {
    this.off = onStopSignal((s) => this.handle(s));
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stopped(): StopSignal | undefined {
    return this.first;
  }

  /** Exit code for the signal that stopped the run (undefined when none came). */
  code(): number | undefined {
    return this.first ? SIGNAL_EXIT[this.first] : undefined;
  }

  private handle(s: StopSignal): void {
    if (this.first) {
      process.stderr.write(`\nsbm: ${SIGNAL_WORDS[s]} again: quitting now; the previous checkpoint is intact\n`);
      process.exit(SIGNAL_EXIT[s]);
    }
    this.first = s;
    process.stderr.write(`\nsbm: ${SIGNAL_WORDS[s]}, ${this.what} (send it again to quit without it)\n`);
    this.controller.abort();
  }

  dispose(): void {
    this.off();
  }
}
