import { afterEach, describe, expect, it, vi } from 'vitest';
import { DUPLICATE_SIGNAL_MS, GracefulStop } from '../src/signals';

// The save-then-stop policy in-process, on a fake clock: the CLI's child-process tests (robustness.test.ts) cover
// real signals; a signal delivered twice within microseconds (GNU timeout's send to the command and then to its
// process group) cannot be produced on demand there, so its rule is checked here.
describe('GracefulStop', () => {
  afterEach(() => vi.restoreAllMocks());

  function harness() {
    let t = 1000;
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const stop = new GracefulStop('saving a checkpoint', () => t);
    return { stop, exit, err, advance: (ms: number) => (t += ms) };
  }

  it('the first signal aborts and asks for a save; the same signal again at once is its duplicate', () => {
    const h = harness();
    h.stop.handle('SIGTERM');
    expect(h.stop.signal.aborted).toBe(true);
    expect(h.stop.code()).toBe(143);
    h.advance(1);
    h.stop.handle('SIGTERM');
    h.advance(DUPLICATE_SIGNAL_MS - 2);
    h.stop.handle('SIGTERM');
    expect(h.exit).not.toHaveBeenCalled();
    expect(h.err).toHaveBeenCalledTimes(1);
    expect(String(h.err.mock.calls[0][0])).toMatch(/terminated \(SIGTERM\), saving a checkpoint/);
    h.stop.dispose();
  });

  it('the same signal after the window, or another signal at once, quits now with its code', () => {
    const a = harness();
    a.stop.handle('SIGINT');
    a.advance(DUPLICATE_SIGNAL_MS);
    a.stop.handle('SIGINT');
    expect(a.exit).toHaveBeenCalledWith(130);
    expect(String(a.err.mock.calls[1][0])).toMatch(/again: quitting now; the previous checkpoint is intact/);
    a.stop.dispose();
    vi.restoreAllMocks();
    const b = harness();
    b.stop.handle('SIGTERM');
    b.stop.handle('SIGHUP');
    expect(b.exit).toHaveBeenCalledWith(129);
    b.stop.dispose();
  });
});
