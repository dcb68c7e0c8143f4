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
 * The same signal again within this many milliseconds of the first is that signal delivered twice, not a second
 * request. GNU `timeout` (without --foreground) sends its signal to the command and then to its own process group,
 * which holds the command too; when the command runs between the two sends (a loaded machine), it receives both.
 * A second Ctrl-C by hand, or a supervisor's second TERM, comes later than this.
 */
export const DUPLICATE_SIGNAL_MS = 250;

/**
 * The usual "save, then stop" policy: the first signal aborts `ac` (the command saves and returns `code()`), a
 * second one exits at once — saves are atomic, so the checkpoint written before stays the one on disk. A repeat of
 * the first signal within DUPLICATE_SIGNAL_MS is ignored (one signal delivered twice); another signal is not.
 */
export class GracefulStop {
  readonly controller = new AbortController();
  private first: StopSignal | undefined;
  private firstAt = 0;
  private readonly off: () => void;

  /** `now`: the clock for the duplicate window (milliseconds; replaceable in tests). */
  constructor(
    private readonly what: string,
    private readonly now: () => number = () => performance.now(),
  ) {
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

  /** What a stop signal does (public for tests; the process's handlers call it). */
  handle(s: StopSignal): void {
    if (this.first === s && this.now() - this.firstAt < DUPLICATE_SIGNAL_MS) return;
    if (this.first) {
      process.stderr.write(`\nsbm: ${SIGNAL_WORDS[s]} again: quitting now; the previous checkpoint is intact\n`);
      process.exit(SIGNAL_EXIT[s]);
    }
    this.first = s;
    this.firstAt = this.now();
    process.stderr.write(`\nsbm: ${SIGNAL_WORDS[s]}, ${this.what} (send it again to quit without it)\n`);
    this.controller.abort();
  }

  dispose(): void {
    this.off();
  }
}
