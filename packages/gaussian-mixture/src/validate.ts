/** A finite-number array (of `length`, when given): the shape check of every float64 argument of this package. */
export function isFiniteArray(v: unknown, length?: number): v is number[] {
  return (
    Array.isArray(v) &&
    (length === undefined || v.length === length) &&
    v.every((e) => typeof e === 'number' && Number.isFinite(e))
  );
}
