/** JSONPath building for error locations: `$.container.k8s`, `$.argv[3]`, `$["odd key"]`. */

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The path of member `key` of the object at `path`. */
export function pathKey(path: string, key: string): string {
  return IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** The path of item `i` of the array at `path`. */
export function pathIndex(path: string, i: number): string {
  return `${path}[${i}]`;
}
