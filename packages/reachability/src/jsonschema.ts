/**
 * A small JSON Schema (draft 2020-12) checker for the keywords the
 * predicate schema in schema.ts uses, so a verifier refuses exactly what the
 * published schema refuses without a second, hand-written copy of the shape
 * and without a runtime dependency. A keyword it does not know makes it
 * throw: a schema change that needs more fails the tests, it is never
 * silently ignored.
 */

/** A schema node: an object of keywords, or `true` (anything). */
type Node = boolean | { readonly [keyword: string]: unknown };

/** Keywords that only annotate. */
const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description']);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeOf(v) === 'object';

/** JSON equality, for const, enum and uniqueItems (key order does not matter). */
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && equal(a[k], b[k]));
  }
  return false;
}

const at = (path: string) => path || '/';

/**
 * Where `value` breaks `schema`: a list of `<JSON pointer>: <what>` issues,
 * empty when it conforms.
 * @throws Error when the schema uses a keyword this checker does not implement
 */
export function schemaIssues(schema: Node, value: unknown, path = ''): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at(path)}: not allowed`];
  const issues: string[] = [];
  const s = schema;
  for (const [k, rule] of Object.entries(s)) {
    if (ANNOTATIONS.has(k)) continue;
    switch (k) {
      case 'type': {
        const t = typeOf(value);
        if (!(t === rule || (rule === 'number' && t === 'integer')))
          issues.push(`${at(path)}: expected ${rule as string}, found ${t}`);
        break;
      }
      case 'const':
        if (!equal(value, rule)) issues.push(`${at(path)}: expected ${JSON.stringify(rule)}`);
        break;
      case 'enum':
        if (!(rule as unknown[]).some((x) => equal(value, x)))
          issues.push(`${at(path)}: expected one of ${JSON.stringify(rule)}`);
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(rule as string, 'u').test(value))
          issues.push(`${at(path)}: does not match ${rule as string}`);
        break;
      case 'minLength':
        if (typeof value === 'string' && [...value].length < (rule as number))
          issues.push(`${at(path)}: shorter than ${rule as number}`);
        break;
      case 'minimum':
        if (typeof value === 'number' && value < (rule as number))
          issues.push(`${at(path)}: below ${rule as number}`);
        break;
      case 'required':
        if (isObject(value))
          for (const r of rule as string[]) if (!(r in value)) issues.push(`${at(path)}: missing ${r}`);
        break;
      case 'properties':
        if (isObject(value))
          for (const [name, sub] of Object.entries(rule as Record<string, Node>))
            if (name in value) issues.push(...schemaIssues(sub, value[name], `${path}/${name}`));
        break;
      case 'additionalProperties':
        if (isObject(value)) {
          const known = (s.properties ?? {}) as Record<string, unknown>;
          for (const name of Object.keys(value))
            if (!(name in known)) {
              if (rule === false) issues.push(`${at(path)}: unexpected member ${name}`);
              else issues.push(...schemaIssues(rule as Node, value[name], `${path}/${name}`));
            }
        }
        break;
      case 'items':
        if (Array.isArray(value))
          value.forEach((x, i) => {
            issues.push(...schemaIssues(rule as Node, x, `${path}/${i}`));
          });
        break;
      case 'minItems':
        if (Array.isArray(value) && value.length < (rule as number))
          issues.push(`${at(path)}: fewer than ${rule as number} items`);
        break;
      case 'maxItems':
        if (Array.isArray(value) && value.length > (rule as number))
          issues.push(`${at(path)}: more than ${rule as number} items`);
        break;
      case 'uniqueItems':
        if (
          rule === true &&
          Array.isArray(value) &&
          value.some((x, i) => value.findIndex((y) => equal(x, y)) !== i)
        )
          issues.push(`${at(path)}: items are not unique`);
        break;
      case 'allOf':
        for (const sub of rule as Node[]) issues.push(...schemaIssues(sub, value, path));
        break;
      case 'oneOf': {
        const matching = (rule as Node[]).filter((sub) => schemaIssues(sub, value, path).length === 0).length;
        if (matching !== 1)
          issues.push(
            `${at(path)}: ${matching === 0 ? 'matches none' : `matches ${matching}`} of the ${(rule as Node[]).length} alternatives (oneOf)`,
          );
        break;
      }
      case 'not':
        if (schemaIssues(rule as Node, value, path).length === 0)
          issues.push(`${at(path)}: matches a schema it must not (not)`);
        break;
      default:
        throw new Error(`schemaIssues: JSON Schema keyword "${k}" is not implemented`);
    }
  }
  return issues;
}
