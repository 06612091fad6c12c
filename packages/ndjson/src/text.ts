// String.prototype.isWellFormed is ES2024 (Node >= 20); the shared tsconfig
// targets ES2023 libs, and other packages compile this source through path
// aliases, so the method is typed here instead of widening everyone's lib.
type WellFormedString = string & { isWellFormed(): boolean };

/** True when `s` has no lone UTF-16 surrogate, i.e. it has a UTF-8 encoding. */
export function isWellFormed(s: string): boolean {
  return (s as WellFormedString).isWellFormed();
}
