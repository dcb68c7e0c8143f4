// Per-kernel profile of a piece of work run k times, from tf.profile (issue 16: "every change is measured where it
// matters"). Two facts about tf.profile in tfjs 4.22 shape what this reports:
//  - kernelMs: the engine asks the backend's time(); the wasm (and cpu) backend's time() is util.now() around the
//    synchronous kernel call, i.e. wall time on the main thread, including any wait for the wasm worker threads
//    and whatever else the OS scheduled meanwhile. (WebGL/WebGPU would report GPU timer queries instead.)
//  - nesting: kernels run inside other kernels are profiled too and are *inside* their parent's kernelMs. The
//    engine's saveTensorsForBackwardMode clones every tensor a gradient needs with an Identity kernel inside the
//    forward kernel that is being recorded (tfjs-core engine.ts runKernelFunc), and a customGrad op's inner ops run
//    inside its scope. Summing kernelMs per name therefore counts those twice; here each call's own ("self") time
//    is its kernelMs minus that of the kernels run directly inside it, so the self times add up to the total.
// The nesting depth is not in the profile record: it is read from the engine's kernelDepth when the profiler is
// entered (a wrapper around tf.engine().profiler.profileKernel for the duration of the profile only). The engine
// pushes one profile record per kernel right after profileKernel returns, in completion order (children before
// their parent), so the depths recorded in return order line up with the records.
// Steps are delimited inside one profile by marks (profiledCount) taken between steps, outside any kernel.

/**
 * tf.profile(fn) with each kernel's nesting depth (1 = called directly, 2 = inside another kernel, …).
 * Returns { kernels, depths, wallMs } where depths[i] belongs to kernels[i] (null if the wrapper could not be
 * installed or the counts disagree, in which case only inclusive times are meaningful).
 */
export async function profileWithDepth(tf, fn) {
  const engine = tf.engine();
  const profiler = engine.profiler;
  const orig = profiler?.profileKernel;
  const depths = [];
  if (typeof orig === 'function') {
    profiler.profileKernel = function (name, inputs, f) {
      const depth = engine.state.kernelDepth;
      const out = orig.call(this, name, inputs, f);
      depths.push(depth);
      return out;
    };
  }
  const t0 = performance.now();
  let info;
  try {
    info = await tf.profile(fn);
  } finally {
    if (typeof orig === 'function') profiler.profileKernel = orig;
  }
  const wallMs = performance.now() - t0;
  // tf.profile returns the engine's one activeProfile object, whose `kernels` the next tf.profile replaces: keep
  // this call's array, not the object.
  const kernels = info.kernels;
  const ok = depths.length === kernels.length;
  return { kernels, depths: ok ? depths : null, wallMs };
}

/**
 * Each call's own time: its kernelMs minus the kernelMs of the kernels run directly inside it (all of them when
 * `depths` is null: inclusive times).
 */
export function selfTimes(kernels, depths) {
  const out = new Array(kernels.length);
  // childMs[d]: kernelMs of the finished, not yet claimed kernels at depth d (post-order: they belong to the next
  // kernel that finishes at depth d − 1).
  const childMs = [];
  for (let i = 0; i < kernels.length; i++) {
    const ms = Number(kernels[i].kernelTimeMs) || 0;
    if (!depths) {
      out[i] = ms;
      continue;
    }
    const d = depths[i];
    out[i] = ms - (childMs[d + 1] ?? 0);
    childMs[d + 1] = 0;
    childMs[d] = (childMs[d] ?? 0) + ms;
  }
  return out;
}

/**
 * Per kernel name over kernels[from, to): calls, inclusive ms, self ms, and how many calls ran nested inside
 * another kernel — each divided by `steps`. Sorted by self time, largest first.
 */
export function aggregate(kernels, depths, self, from, to, steps) {
  const byName = new Map();
  for (let i = from; i < to; i++) {
    const k = kernels[i];
    const a = byName.get(k.name) ?? { kernel: k.name, calls: 0, nestedCalls: 0, inclusiveMs: 0, selfMs: 0 };
    a.calls += 1;
    a.nestedCalls += depths && depths[i] > 1 ? 1 : 0;
    a.inclusiveMs += Number(k.kernelTimeMs) || 0;
    a.selfMs += self[i];
    byName.set(k.name, a);
  }
  const rows = [...byName.values()].map((a) => ({
    kernel: a.kernel,
    calls: a.calls / steps,
    nestedCalls: a.nestedCalls / steps,
    inclusiveMs: a.inclusiveMs / steps,
    selfMs: a.selfMs / steps,
  }));
  return rows.sort((x, y) => y.selfMs - x.selfMs);
}

/** How many kernels the running tf.profile has recorded so far: a step boundary when read between steps. */
export function profiledCount(tf) {
  return tf.engine().state.activeProfile.kernels.length;
}
